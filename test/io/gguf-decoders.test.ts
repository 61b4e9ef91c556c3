// Every decoder family in llama.cpp: each PyTorch-reference checkpoint of
// test/fixtures/decoders/ (scripts/ref_decoders.py; its logits are kdqat's within 1e-4, see
// test/models/decoders.test.ts) is exported to GGUF through its architecture record (llama
// with q/k permuted and rope_freqs for llama3 scaling, qwen2 with q/k/v biases, qwen3 with
// q/k norms and key_length ≠ hidden/heads, phi3 with attn_qkv and ffn_up stacked) and run by
// llama.cpp (node-llama-cpp's CPU build). As in gguf-llama.test.ts: per position max |Δ log p|
// within the float32 allowance (f32Tolerance) and the same greedy continuation wherever it is
// decided by more than that; and llama.cpp tokenizes a text to the ids kdqat's tokenizer gives,
// with a byte-level BPE in the family's own pre-tokenizer settings (tokenizer-families.ts).
// Sliding windows: llama.cpp applies none — it runs Mistral as "llama", which has no window, and
// its phi3 reads attention.sliding_window but switches it off ("Phi SWA is currently disabled",
// src/models/phi3.cpp). So the families are compared on sequences shorter than their windows
// (28 tokens; 4096, 2047), and for a window shorter than that the exporter's note is checked
// and llama.cpp is shown to run full attention.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { loadModelDir, asModel } from '../../src/io/model-dir.js';
import { exportLlamaGguf, readGgufHeader, ggufGet } from '../../src/io/gguf.js';
import { lmLogits } from '../../src/models/model.js';
import type { LlamaConfig } from '../../src/models/llama.js';
import { loadTokenizer, sotuTexts, trainByteLevelBpe } from '../../src/tokenize/index.js';
import { agreement, argmaxFlipsWithin, f32Tolerance, runLlamaCpp } from './llamacpp.js';
import { GPT2, LLAMA3, QWEN2, SMOLLM, TEST_TEXT, type ByteLevelFamily } from './tokenizer-families.js';
import { byteLevelTokenizer } from './gguf-fixtures.js';
import { runExport } from '../../src/cli/export.js';
import { tmpDir } from '../util.js';

const ROOT = fileURLToPath(new URL('../fixtures/decoders/', import.meta.url));
const GEN = 16;
const PROMPT = [72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100]; // "Hello, world"
/** fixture → (the tokenizer family its real model uses, llama.cpp arch, what the GGUF must hold). */
const CASES: [string, ByteLevelFamily, string, string[], Partial<LlamaConfig>?][] = [
  ['smollm2', SMOLLM, 'llama', []],
  ['llama3', LLAMA3, 'llama', ['rope_freqs.weight']],
  ['llama-linear', GPT2, 'llama', []],
  ['llama-yarn', GPT2, 'llama', []],
  ['mistral', GPT2, 'llama', ['output.weight']],
  ['qwen2', QWEN2, 'qwen2', ['blk.0.attn_q.bias']],
  ['qwen3', QWEN2, 'qwen3', ['blk.1.attn_k_norm.weight']],
  ['phi3', GPT2, 'phi3', ['blk.0.attn_qkv.weight']],
  ['seed-oss', GPT2, 'seed_oss', ['blk.0.attn_v.bias', 'blk.1.post_attention_norm.weight']],
  // Phi-3 with a window of 8 < 28 tokens: llama.cpp ignores it, so it equals kdqat without one.
  ['phi3', GPT2, 'phi3', ['blk.0.attn_qkv.weight'], { slidingWindow: 8 }],
  // LongRoPE: llama.cpp takes the long factors when its context (256 here: it rounds up to a
  // multiple of 256) exceeds the original one, kdqat when the sequence (28) does: long for an
  // original context of 16, short for 256.
  ['phi3-longrope', GPT2, 'phi3', ['rope_factors_long.weight', 'rope_factors_short.weight']],
  ['phi3-longrope-short', GPT2, 'phi3', ['rope_factors_long.weight', 'rope_factors_short.weight']],
  // Phi-4-mini: RoPE on 6 of 8 entries per head (rope.dimension_count 6), tied embeddings.
  ['phi4-mini', GPT2, 'phi3', ['rope_factors_long.weight']],
  // SmolLM3: no RoPE in the 4th layer (llama.cpp's fixed NoPE step), tied embeddings.
  ['smollm3', GPT2, 'smollm3', ['blk.3.attn_q.weight']],
];

let dir = '';
let llama: Llama;
let corpus: string[] = [];
before(async () => {
  dir = tmpDir('gguf-dec');
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  corpus = sotuTexts().slice(-2);
});
after(async () => {
  await llama?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const [name, tokFamily, arch, mustHave, over] of CASES) {
  test(`${name}${over ? ` ${JSON.stringify(over)}` : ''}: llama.cpp ("${arch}") runs the exported GGUF as kdqat does (float32 bound, ${GEN} greedy tokens) and tokenizes alike`, async () => {
    const loaded = loadModelDir(path.join(ROOT, name));
    if (over) {
      loaded.hf = { ...loaded.hf, config: { ...loaded.hf.config, ...over } } as typeof loaded.hf;
      loaded.config = loaded.hf.config;
    }
    const cfg = loaded.hf.config as LlamaConfig;
    const tokenizer = trainByteLevelBpe(corpus, {
      vocabSize: cfg.vocabSize, specialTokens: tokFamily.specials, preTokenizer: tokFamily.preTokenizer, normalizer: tokFamily.normalizer,
      decoder: tokFamily.decoder, ignoreMerges: tokFamily.ignoreMerges, postProcessor: 'byte-level',
    });
    const file = path.join(dir, `${name}${over ? '-over' : ''}.gguf`);
    exportLlamaGguf(file, { config: loaded.hf, params: loaded.params, tokenizerJson: tokenizer, special: { bosTokenId: null, eosTokenId: 257 } });
    const g = readGgufHeader(file);
    assert.equal(ggufGet(g, 'general.architecture'), arch);
    for (const t of mustHave) assert.ok(g.tensors.has(t), `${name}: GGUF has no ${t}`);

    const cpp = await runLlamaCpp(llama, file, PROMPT, GEN, cfg.vocabSize);
    const ids = [...PROMPT, ...cpp.tokens.slice(0, -1)];
    const V = cfg.vocabSize;
    const ours = noGrad(() => {
      const m = asModel(loaded);
      if (over?.slidingWindow) m.config = { ...m.config, slidingWindow: null }; // as llama.cpp runs it (see top)
      const z = lmLogits(m, intTensor(ids, [1, ids.length])).f32; // (1, T, V)
      return ids.map((_, t) => z.subarray(t * V, (t + 1) * V));
    });
    const tol = f32Tolerance(cfg);
    const { worst, worstAt } = agreement(ours, cpp);
    process.stdout.write(`# ${name}: max |Δ log p| ${worst.toExponential(2)} × range (bound ${tol.toExponential(2)})\n`);
    assert.ok(worst <= tol, `${name}: max |Δ log p| = ${worst.toExponential(2)} × range at position ${worstAt} (> ${tol.toExponential(2)})`);
    assert.equal(argmaxFlipsWithin(ours, cpp, tol).outside, 0, `${name}: greedy continuations differ`);

    const tokFile = path.join(dir, `${name}.tokenizer.json`);
    fs.writeFileSync(tokFile, JSON.stringify(tokenizer));
    const want = loadTokenizer(tokFile).encode(TEST_TEXT, { addSpecialTokens: false });
    const model = await llama.loadModel({ modelPath: file });
    try {
      assert.deepEqual(Array.from(model.tokenize(TEST_TEXT, false), Number), want, `${name}: llama.cpp's token ids differ from kdqat's`);
    } finally {
      await model.dispose();
    }
  });
}

test('a model with a sliding window: the export says llama.cpp will not apply it (not for a window as long as the positions)', () => {
  const notesOf = (name: string, over: Partial<LlamaConfig> = {}): string[] => {
    const loaded = loadModelDir(path.join(ROOT, name));
    const hf = { ...loaded.hf, config: { ...loaded.hf.config, ...over } } as typeof loaded.hf;
    return exportLlamaGguf(path.join(dir, `${name}-${JSON.stringify(over).replace(/\W/g, '')}-note.gguf`), { config: hf, params: loaded.params, tokenizerJson: byteLevelTokenizer() });
  };
  for (const [name, over] of [['mistral-swa', {}], ['phi3', { slidingWindow: 8 }]] as const) {
    const notes = notesOf(name, over);
    assert.equal(notes.length, 1, name);
    assert.match(notes[0], /on contexts longer than sliding_window = 8 /, name);
  }
  // phi3's 2047 ≥ its 256 positions: the window never applies, so there is nothing to say.
  assert.deepEqual(notesOf('phi3'), []);
  // LongRoPE: llama.cpp's choice of factors by context size.
  assert.match(notesOf('phi3-longrope-short').join('\n'), /long factors by its context size .* run it with -c 256 or less/);
  assert.match(notesOf('phi3-longrope').join('\n'), /no context of llama\.cpp's is that short: its outputs equal theirs on texts longer than 16 tokens only/);
});

test('kdqat export (the CLI path) writes each family through its record; a Q4_0 Phi-3 (fused attn_qkv / ffn_up in blocks) loads and runs in llama.cpp', async () => {
  for (const [name, arch] of [['qwen3', 'qwen3'], ['phi3', 'phi3'], ['mistral', 'llama']] as const) {
    const model = path.join(dir, `${name}-dir`);
    fs.cpSync(path.join(ROOT, name), model, { recursive: true });
    fs.writeFileSync(path.join(model, 'tokenizer.json'), JSON.stringify(byteLevelTokenizer()));
    const out = path.join(dir, `${name}-cli.gguf`);
    await runExport({ model, format: 'gguf', out, type: name === 'phi3' ? 'q4_0' : 'f16' });
    const g = readGgufHeader(out);
    assert.equal(ggufGet(g, 'general.architecture'), arch);
    if (name === 'phi3') {
      assert.equal(g.tensors.get('blk.0.attn_qkv.weight')!.type, 'Q4_0');
      assert.equal(g.tensors.get('blk.0.ffn_up.weight')!.type, 'Q4_0');
      const cpp = await runLlamaCpp(llama, out, PROMPT, 4, 264);
      assert.equal(cpp.tokens.length, 4);
    }
  }
});

test('SmolLM3 with NoPE layers other than llama.cpp\'s every 4th: the GGUF export refuses, naming no_rope_layers', () => {
  const loaded = loadModelDir(path.join(ROOT, 'smollm3'));
  for (const noRopeLayers of [[2], [1, 3], undefined]) {
    const hf = { ...loaded.hf, config: { ...loaded.hf.config, noRopeLayers } } as typeof loaded.hf;
    const file = path.join(dir, `smollm3-${JSON.stringify(noRopeLayers)}.gguf`.replace(/[^\w.-]/g, ''));
    assert.throws(() => exportLlamaGguf(file, { config: hf, params: loaded.params, tokenizerJson: byteLevelTokenizer() }),
      /no_rope_layers leaves RoPE out of layers \[[\d, ]*\]; llama\.cpp's smollm3 leaves it out of every 4th layer \(\[3\]\)/);
    assert.ok(!fs.existsSync(file), 'nothing written');
  }
});
