// The README's llama.cpp table: file size and llama.cpp perplexity of the built-in LM teacher
// exported to GGUF as F16, round-to-nearest (RTN) Q4_0 / TQ2_0 / Q4_K_M, and KD-QAT Q4_K_M
// (trained on the Q4_K_M mix's own grids, quant/kmix.ts kMixQuantConfig, so its GGUF is exact).
// Every step is a kdqat command, so the table is what a user gets:
//   F16, Q4_0, TQ2_0   kdqat export --model TEACHER --format gguf --type f16|q4_0|tq2_0
//                      (= convert_hf_to_gguf + llama-quantize; token_embd/output Q8_0 for the
//                      low-bit types, export's default)
//   RTN Q4_K_M         kdqat quantize --quant q4_k_m.json (round-to-nearest onto the mix's grids)
//                      + kdqat export --type q4_k_m
//   KD-QAT Q4_K_M      kdqat qat --quant q4_k_m.json --loss pred=1 --steps STEPS + export --type q4_k_m
// Perplexity: llama.cpp (node-llama-cpp's prebuilt CPU build) runs llama-perplexity's loop
// (tools/perplexity/perplexity.cpp: chunks of n_ctx = SEQ tokens, BOS over each chunk's first
// token, second half scored) on the held-out SOTU test addresses (the teacher never saw them);
// beside it, `kdqat eval --ppl-convention llama.cpp` of the same model on the same text.
//
// Usage: npx tsx scripts/kquant-table.ts [--out runs/kquant-table] [--steps 100] [--lr 1e-4] [--threads 1] [--only LABEL]
// Prints a Markdown table; the intermediate files stay in --out (re-running reuses them).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Token } from 'node-llama-cpp';
import { loadCorpus, splitCorpus, defaultCorpusSplit } from '../src/data/index.js';
import { loadModelDir } from '../src/io/model-dir.js';
import { kMixQuantConfig } from '../src/quant/kmix.js';
import type { LlamaConfig } from '../src/models/llama.js';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const TEACHER = arg('teacher', 'teachers/llama-sotu');
const OUT = path.resolve(arg('out', 'runs/kquant-table'));
const STEPS = arg('steps', '100');
const LR = arg('lr', '1e-4'); // kdqat qat's default
const THREADS = arg('threads', '1');
const ONLY = arg('only', ''); // measure only the rows whose label contains this (the files are made anyway)
const SEQ = 128; // the teacher's max_position_embeddings
fs.mkdirSync(OUT, { recursive: true });
const at = (f: string): string => path.join(OUT, f);

function kdqat(args: string[]): string {
  const t0 = Date.now();
  process.stderr.write(`$ kdqat ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, ['bin/kdqat.js', ...args], {
    encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, KDQAT_THREADS: THREADS },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`kdqat ${args.join(' ')} failed (exit ${r.status})`);
  process.stderr.write(`  (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  return r.stdout;
}
const once = (file: string, make: () => void): void => { if (!fs.existsSync(file)) make(); };

// ---- the models -----------------------------------------------------------------------------
const cfg = loadModelDir(TEACHER).config as LlamaConfig;
const mixJson = at('q4_k_m.json');
fs.writeFileSync(mixJson, JSON.stringify(kMixQuantConfig(cfg, 'Q4_K_M'), null, 2) + '\n');
const rows: { label: string; gguf: string; model: string }[] = [];
for (const t of ['f16', 'q4_0', 'tq2_0']) {
  const gguf = at(`teacher-${t}.gguf`);
  once(gguf, () => kdqat(['export', '--model', TEACHER, '--format', 'gguf', '--type', t, '--out', gguf]));
  rows.push({ label: t === 'f16' ? 'F16 (the teacher)' : `RTN ${t.toUpperCase()}`, gguf, model: t === 'f16' ? TEACHER : '' });
}
const rtn = at('rtn-q4_k_m');
once(rtn, () => kdqat(['quantize', '--model', TEACHER, '--quant', mixJson, '--out', rtn]));
const qat = at('qat-q4_k_m');
once(path.join(qat, 'student'), () => kdqat(['qat', '--teacher', TEACHER, '--data', 'sotu', '--quant', mixJson, '--loss', 'pred=1',
  '--steps', STEPS, '--lr', LR, '--eval-every', '0', '--save-every', '0', '--threads', THREADS, '--out', qat, '--force']));
for (const [label, dir] of [['RTN Q4_K_M', rtn], [`KD-QAT Q4_K_M (${STEPS} steps, lr ${LR})`, path.join(qat, 'student')]]) {
  const gguf = `${dir.replace(/\/student$/, '')}.gguf`;
  once(gguf, () => kdqat(['export', '--model', dir, '--format', 'gguf', '--type', 'q4_k_m', '--out', gguf]));
  rows.push({ label, gguf, model: dir });
}

// ---- held-out text and perplexity ---------------------------------------------------------------
const split = splitCorpus(loadCorpus('sotu'), defaultCorpusSplit('sotu'));
const textFile = at('sotu-test.txt');
fs.writeFileSync(textFile, split.test.map((d) => d.text).join('\n\n'));
const text = fs.readFileSync(textFile, 'utf8');

const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
/** llama-perplexity -c SEQ on `file` over `text`: [ppl, scored tokens, chunks]. */
async function llamaCppPpl(file: string): Promise<[number, number, number]> {
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({ threads: Number(THREADS), contextSize: SEQ, batchSize: SEQ });
  try {
    const bos = model.tokens.bos;
    const addBos = model.tokens.shouldPrependBosToken && bos !== null;
    const tokens = [...(addBos ? [bos!] : []), ...model.tokenize(text, false)];
    const chunks = Math.floor(tokens.length / SEQ), first = Math.floor(SEQ / 2);
    let nll = 0, n = 0;
    const seq = ctx.getSequence();
    for (let c = 0; c < chunks; c++) {
      const chunk = tokens.slice(c * SEQ, (c + 1) * SEQ);
      if (addBos) chunk[0] = bos!;
      await seq.clearHistory();
      const items: ControlledEvaluateInputItem[] = chunk.map((t, j) =>
        j >= first && j <= SEQ - 2 ? [t as Token, { generateNext: { probabilities: true } }] : (t as Token));
      const res = await seq.controlledEvaluate(items);
      for (let j = first; j <= SEQ - 2; j++) { nll -= Math.log(res[j]!.next.probabilities!.get(chunk[j + 1] as Token)!); n++; }
    }
    return [Math.exp(nll / n), n, chunks];
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

const table = ['| model | GGUF size | llama.cpp perplexity | kdqat, same convention |', '|---|---:|---:|---:|'];
let scored = '';
for (const r of rows.filter((x) => x.label.includes(ONLY))) {
  const [ppl, n, chunks] = await llamaCppPpl(r.gguf);
  scored = `${n} scored tokens in ${chunks} chunks of ${SEQ}`;
  let own = '—';
  if (r.model) {
    const j = JSON.parse(kdqat(['eval', '--model', r.model, '--text', textFile, '--seq', String(SEQ), '--ppl-convention', 'llama.cpp', '--json']));
    own = Number(j.results[0].ppl).toFixed(2);
  }
  const mb = (fs.statSync(r.gguf).size / 1e6).toFixed(2);
  table.push(`| ${r.label} | ${mb} MB | ${ppl.toFixed(2)} | ${own} |`);
  process.stderr.write(`${table[table.length - 1]}\n`);
}
await llama.dispose();
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(table.join('\n'));
console.log(`\n${TEACHER} on the SOTU test addresses (${scored}); ${new Date().toISOString().slice(0, 10)}, ${cpu}, ` +
  `KDQAT_THREADS=${THREADS}; \`npx tsx scripts/kquant-table.ts --steps ${STEPS} --lr ${LR}\`.`);
