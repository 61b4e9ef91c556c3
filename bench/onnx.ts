// `npm run bench -- --only onnx`: ONNX export sizes and onnxruntime-node latency of the built-in
// teachers' students against the FP32 export: the LLaMA per generated token (a 32-token prompt,
// then 64 single-token steps on the KV cache, batch 1) and the BERT classifier per sequence
// (64 tokens, batch 1). Best of `rounds` per configuration, interleaved.
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { buildOnnx, type OnnxDType } from '../src/io/onnx-export.js';
import { openModel } from '../src/cli/open-model.js';
import { loadModelDir, asModel } from '../src/io/model-dir.js';
import { loadQuantConfig } from '../src/quant/config.js';
import { prepare } from '../src/quant/prepare.js';
import { saveStudent } from '../src/quant/student.js';
import type { OnnxModelIn } from '../src/io/onnx-export.js';

const TEACHERS = fileURLToPath(new URL('../teachers/', import.meta.url));

export interface OnnxBenchRecord {
  bench: 'onnx'; model: string; weights: string; bytes: number; threads: number;
  /** ms per generated token (decoder) or per 64-token sequence (encoder). */
  ms: number; unit: 'token' | 'sequence';
}

function student(teacher: string, preset: string, dir: string): OnnxModelIn {
  const t = loadModelDir(path.join(TEACHERS, teacher));
  const out = path.join(dir, `${teacher}-${preset}`);
  saveStudent(out, asModel(t), prepare(asModel(t), loadQuantConfig(preset).config), { hf: t.hf });
  const m = openModel(out);
  return { model: m.model, student: m.student };
}

const i64 = (n: number, f: (i: number) => number, dims: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(f(i))), dims);

async function decoderMs(s: ort.InferenceSession, m: OnnxModelIn): Promise<number> {
  const c = m.model.config as { numHiddenLayers: number; numKeyValueHeads: number; hiddenSize: number; numAttentionHeads: number; vocabSize: number };
  const D = c.hiddenSize / c.numAttentionHeads, P = 32, N = 64;
  const feeds = (T: number, past: number, prev?: ort.InferenceSession.OnnxValueMapType): Record<string, ort.Tensor> => {
    const f: Record<string, ort.Tensor> = {
      input_ids: i64(T, (i) => (i * 37 + past) % c.vocabSize, [1, T]), attention_mask: i64(past + T, () => 1, [1, past + T]),
      position_ids: i64(T, (i) => past + i, [1, T]),
    };
    for (let l = 0; l < c.numHiddenLayers; l++) {
      for (const kv of ['key', 'value']) {
        f[`past_key_values.${l}.${kv}`] = (prev?.[`present.${l}.${kv}`] as ort.Tensor) ?? new ort.Tensor('float32', new Float32Array(0), [1, c.numKeyValueHeads, 0, D]);
      }
    }
    return f;
  };
  let r = await s.run(feeds(P, 0));
  const t0 = performance.now();
  for (let i = 0; i < N; i++) r = await s.run(feeds(1, P + i, r));
  return (performance.now() - t0) / N;
}

async function encoderMs(s: ort.InferenceSession): Promise<number> {
  const T = 64, n = 40;
  const feeds = { input_ids: i64(T, (i) => (i * 31) % 4000 + 5, [1, T]), attention_mask: i64(T, () => 1, [1, T]), token_type_ids: i64(T, () => 0, [1, T]) };
  await s.run(feeds);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await s.run(feeds);
  return (performance.now() - t0) / n;
}

export async function runOnnxBench(o: { rounds?: number; threads?: number[] } = {}): Promise<OnnxBenchRecord[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-onnx-bench-'));
  const recs: OnnxBenchRecord[] = [];
  try {
    const cases: { model: string; input: OnnxModelIn; weights: string; dtype: OnnxDType; dec: boolean }[] = [];
    for (const [teacher, presets, dec] of [['llama-sotu', ['w4-g128', 'q4_0', 'tq2_0'], true], ['bert-brown-genre', ['w4-g128', 'twn', 'twn-a8'], false]] as const) {
      const t = loadModelDir(path.join(TEACHERS, teacher));
      cases.push({ model: teacher, input: { model: asModel(t) }, weights: 'fp32', dtype: 'f32', dec });
      cases.push({ model: teacher, input: { model: asModel(t) }, weights: 'fp16 (f32 compute)', dtype: 'f16', dec });
      for (const p of presets) cases.push({ model: teacher, input: student(teacher, p, dir), weights: p, dtype: 'quantized', dec });
    }
    const best = new Map<string, OnnxBenchRecord>();
    for (let round = 0; round < (o.rounds ?? 3); round++) {
      for (const threads of o.threads ?? [1, 2]) {
        for (const c of cases) {
          const bytes = buildOnnx(c.input, c.dtype);
          const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 });
          const ms = c.dec ? await decoderMs(s, c.input) : await encoderMs(s);
          await s.release();
          const key = `${c.model}|${c.weights}|${threads}`;
          const prev = best.get(key);
          if (!prev || ms < prev.ms) best.set(key, { bench: 'onnx', model: c.model, weights: c.weights, bytes: bytes.length, threads, ms, unit: c.dec ? 'token' : 'sequence' });
        }
      }
    }
    recs.push(...best.values());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return recs;
}

export function printOnnxTable(recs: OnnxBenchRecord[]): void {
  console.log('\nONNX export in onnxruntime-node (batch 1; LLaMA: ms per generated token on the KV cache; BERT: ms per 64-token sequence)');
  console.log('| model | weights | file MB | threads | ms | vs fp32 |');
  console.log('|---|---|---|---|---|---|');
  for (const r of recs) {
    const base = recs.find((x) => x.model === r.model && x.weights === 'fp32' && x.threads === r.threads)!;
    console.log(`| ${r.model} | ${r.weights} | ${(r.bytes / 1e6).toFixed(2)} | ${r.threads} | ${r.ms.toFixed(2)} | ${(r.ms / base.ms).toFixed(2)}× |`);
  }
}
