// Every registered family whose architecture record has an `onnx` field, built from its own
// record (pretrain.config, paramSpec; an encoder with the HF classifier class and three labels),
// exports to ONNX and runs in onnxruntime-node to kdqat's outputs: a family added to the
// registry with an `onnx` spec is tested here without a new test. Decoders: full forward and a
// KV-cache step (checkDecoder); encoders: classifier logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, intTensor } from '../../src/tensor/index.js';
import { ARCHITECTURES } from '../../src/models/registry.js';
import type { Architecture, ModelSizes } from '../../src/models/architecture.js';
import { buildOnnx } from '../../src/io/onnx-export.js';
import { relError } from '../util.js';
import { familyModel, randomIds } from '../quant/models.js';
import { checkDecoder, data, i64, onnxBound, session } from './onnx-helpers.js';

const SIZES: ModelSizes = { vocab: 96, hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 128, seq: 32, dropout: 0 };

for (const [name, rec] of Object.entries(ARCHITECTURES) as [string, Architecture][]) {
  if (!rec.onnx) continue;
  test(`${name} (${rec.kind}, from its record): onnxruntime = kdqat`, async () => {
    const sizes = { ...SIZES, kvHeads: rec.kind === 'encoder' ? SIZES.heads : SIZES.kvHeads };
    const { model, hf } = familyModel(name, SIZES);
    const r: Architecture = ARCHITECTURES[hf.arch];
    const bytes = buildOnnx({ model }, 'f32');
    if (rec.kind === 'decoder') return checkDecoder(model, bytes, name);
    // Row 0 unpadded, row 1 left-padded with the family's padding id (RoBERTa counts positions
    // from it), both run with their attention mask.
    const B = 2, T = 7, ids = randomIds(B, T, sizes.vocab);
    const pad = (hf.config as { padTokenId?: number }).padTokenId ?? r.specialIds(hf.meta).pad ?? 0;
    const mask = new Int32Array(B * T).fill(1);
    for (let t = 0; t < 2; t++) [ids.i32[T + t], mask[T + t]] = [pad, 0];
    for (let i = 0; i < B * T; i++) if (mask[i] && ids.i32[i] === pad) ids.i32[i] = (pad + 1) % sizes.vocab;
    const s = await session(bytes);
    const feeds = { input_ids: i64(ids.i32, [B, T]), attention_mask: i64(mask, [B, T]) } as Record<string, ReturnType<typeof i64>>;
    if (s.inputNames.includes('token_type_ids')) feeds.token_type_ids = i64(new Array(B * T).fill(0), [B, T]);
    const got = data((await s.run(feeds)).logits);
    const want = noGrad(() => r.forward(model, { ids, mask: intTensor(mask, [B, T]) }).logits.f32);
    assert.ok(relError(got, want) <= onnxBound(sizes.layers, sizes.intermediate), `${name}: rel error ${relError(got, want)}`);
  });
}
