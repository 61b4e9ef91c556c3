// kdqat's K-quant GGUF exports are what llama.cpp's own quantize tool writes: for the shipped
// teacher (teachers/llama-sotu), `kdqat export --type q4_k_m / q5_k_m` and a Q6_K export (token_embd
// Q6_K too) give, tensor for tensor, the types and the bytes (SHA-256) of llama_model_quantize run
// on kdqat's F32 export (test/fixtures/llama_quantize_kmix.json, made by
// scripts/make_kmix_fixture.sh with node-llama-cpp's libllama). That ties quant/kmix.ts to
// llama_tensor_get_type and the K-quant blocks to llama-quantize end to end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportLlamaGguf, ggufGet, readGgufHeader, readGgufTensor, type GgmlType, type GgufEmbedType, type GgufWeightType } from '../../src/io/gguf.js';
import { loadModelDir, type LoadedModel } from '../../src/io/model-dir.js';
import { kMixTypes } from '../../src/quant/kmix.js';
import type { LlamaConfig } from '../../src/models/llama.js';
import { tmpDir } from '../util.js';

const TEACHER = fileURLToPath(new URL('../../teachers/llama-sotu', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/llama_quantize_kmix.json', import.meta.url));
type Recipe = { file_type: number; tensors: Record<string, { type: string; sha256: string }> };
const fixture = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as Record<string, Recipe>;

let dir = '';
let m: LoadedModel;
before(() => {
  dir = tmpDir('lq');
  m = loadModelDir(TEACHER);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** How kdqat exports each recipe: the mixes by their type map, Q6_K with token_embd Q6_K
 *  (llama-quantize keeps the file's type for token_embd, and the tied output rule gives Q6_K). */
const RECIPES: Record<string, (cfg: LlamaConfig) => { dtype: GgufWeightType; embedType?: GgufEmbedType; types?: Map<string, GgmlType> }> = {
  Q4_K_M: (cfg) => ({ dtype: 'Q4_K', types: kMixTypes(cfg, 'Q4_K_M') }),
  Q5_K_M: (cfg) => ({ dtype: 'Q5_K', types: kMixTypes(cfg, 'Q5_K_M') }),
  Q6_K: () => ({ dtype: 'Q6_K', embedType: 'Q6_K' }),
};

for (const [name, how] of Object.entries(RECIPES)) {
  test(`${name}: kdqat's export = llama-quantize's, every tensor's type and bytes`, () => {
    assert.ok(m.hf.arch === 'llama');
    const want = fixture[name];
    assert.ok(want, `${FIXTURE} has no ${name}; rerun scripts/make_kmix_fixture.sh`);
    const file = path.join(dir, `${name}.gguf`);
    exportLlamaGguf(file, { config: m.hf, params: m.params, tokenizerJson: fs.readFileSync(m.tokenizerPath!, 'utf8'), ...how(m.hf.config) });
    const g = readGgufHeader(file);
    assert.equal(ggufGet(g, 'general.file_type'), want.file_type);
    assert.deepEqual([...g.tensors.keys()].sort(), Object.keys(want.tensors).sort());
    for (const [t, info] of g.tensors) {
      assert.equal(info.type, want.tensors[t].type, `${name} ${t}: type`);
      const a = readGgufTensor(g, t);
      const sha = createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
      assert.equal(sha, want.tensors[t].sha256, `${name} ${t} (${info.type}): bytes differ from llama-quantize's`);
    }
  });
}
