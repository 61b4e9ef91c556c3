// KD-QAT quality with the teacher's logits cached as their top K (`--cache-teacher-topk K`,
// docs/distillation.md) against the full logits: the same run (teacher teachers/llama-sotu,
// SOTU, w4-channel, logits KL) per K and seed, each with its own teacher cache, evaluated in
// float32 on the same validation windows against the full teacher; prints the final validation
// KL and perplexity per run and the mean ± std per K.
// Usage: [THREADS=n] npx tsx bench/topk_quality.ts [steps] [seeds] [windows] [K,K,…] (K 0 = full logits;
// THREADS: native threads, default all cores)
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { runQat, QAT_DEFAULTS } from '../src/train/qat.js';
import { setThreads } from '../src/tensor/index.js';

if (process.env.THREADS) setThreads(Number(process.env.THREADS));

const [steps = 150, seeds = 3, windows = 32] = process.argv.slice(2, 5).map(Number);
const ks = (process.argv[5] ?? '0,64,8').split(',').map(Number);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'topk-quality-'));
const teacher = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'teachers', 'llama-sotu');
const results = new Map<number, { kl: number[]; ppl: number[] }>();
for (let seed = 1; seed <= seeds; seed++) {
  for (const k of ks) {
    const out = path.join(root, `s${seed}-k${k}`);
    const t0 = performance.now();
    runQat({
      out, evaluate: 'periodic',
      config: { ...QAT_DEFAULTS, teacher, data: 'sotu', quant: 'w4-channel', steps, seed, evalEvery: steps, evalWindows: windows,
        saveEvery: 0, logEvery: steps, cacheTeacher: path.join(root, `cache-s${seed}-k${k}`), cacheTeacherTopk: k,
        bf16: 'off' }, // float32 on every CPU: the README's figures
    });
    const lines = fs.readFileSync(path.join(out, 'qat_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const ev = lines.filter((l) => l.valid_ppl !== undefined).at(-1);
    const r = results.get(k) ?? { kl: [], ppl: [] };
    r.kl.push(ev.valid_kl); r.ppl.push(ev.valid_ppl);
    results.set(k, r);
    console.log(JSON.stringify({ seed, topk: k, steps, valid_kl: ev.valid_kl, valid_ppl: ev.valid_ppl, seconds: Math.round((performance.now() - t0) / 100) / 10 }));
  }
}
const ms = (x: number[]): string => {
  const m = x.reduce((a, b) => a + b, 0) / x.length;
  const sd = Math.sqrt(x.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, x.length - 1));
  return `${m.toPrecision(5)} ± ${sd.toPrecision(2)}`;
};
for (const [k, r] of results) console.log(`K ${k === 0 ? 'full' : k}: valid KL ${ms(r.kl)}, valid ppl ${ms(r.ppl)} (${r.kl.length} seeds)`);
fs.rmSync(root, { recursive: true });
