// The fields of every `kdqat bench --json` record, per kind, for scripts that check figures:
// `node --import tsx bench/schema.ts FILE.jsonl` prints the problems of each line (exit 1) or a count per
// kind. Every record names its machine: cpu (bench/env.ts cpuModel()), isa (the SIMD path of the
// kernels that dominate it) and isa_paths (the details).
import * as fs from 'node:fs';

type Kind = 'string' | 'number' | 'object' | 'array';
const COMMON: Record<string, Kind> = { bench: 'string', cpu: 'string', isa: 'string', isa_paths: 'object', threads: 'number' };
const STEP: Record<string, Kind> = { impl: 'string', tokens_per_s: 'number', step_ms: 'number', peak_rss_mb: 'number' };

export const RECORD_FIELDS: Record<string, Record<string, Kind>> = {
  gemm: { impl: 'string', m: 'number', k: 'number', n: 'number', gflops: 'number' },
  train_step: STEP,
  qat_step: { ...STEP, shape: 'string', best_tokens_per_s: 'number' },
  qat_scaling: {
    ...STEP, shape: 'string', sweeps: 'array', dim: 'number', layers: 'number', seq: 'number', batch: 'number',
    tokens_per_step: 'number', attn_flop_share: 'number', matmul_flops_per_token: 'number', best_tokens_per_s: 'number',
  },
  quant: { backend: 'string', what: 'string', shape: 'string', ms: 'number' },
  kquant: { impl: 'string', format: 'string', usPerWeight: 'number' },
  onnx: { model: 'string', weights: 'string', bytes: 'number', ms: 'number', unit: 'string' },
  real_size: { impl: 'string', model: 'string', batch: 'number', seq: 'number', load_ms: 'number', forward_tokens_per_s: 'number', qat_tokens_per_s: 'number', peak_rss_mb: 'number' },
};

const kindOf = (v: unknown): Kind | 'other' =>
  Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isFinite(v) ? 'number' : 'other') : typeof v === 'string' ? 'string' : v && typeof v === 'object' ? 'object' : 'other';

/** The problems of one record (empty: it has every field of its kind, with the right types). */
export function recordProblems(rec: unknown): string[] {
  if (!rec || typeof rec !== 'object') return ['not an object'];
  const r = rec as Record<string, unknown>;
  const fields = RECORD_FIELDS[r.bench as string];
  if (!fields) return [`unknown bench "${String(r.bench)}" (${Object.keys(RECORD_FIELDS).join(', ')})`];
  const out: string[] = [];
  for (const [k, t] of Object.entries({ ...COMMON, ...fields })) {
    if (kindOf(r[k]) !== t) out.push(`${k}: expected a ${t === 'number' ? 'finite number' : t}, got ${JSON.stringify(r[k])}`);
  }
  if (typeof r.cpu === 'string' && r.cpu.trim() === '') out.push('cpu: empty');
  if (typeof r.isa === 'string' && r.isa.trim() === '') out.push('isa: empty');
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) { console.error('usage: node --import tsx bench/schema.ts FILE.jsonl'); process.exit(2); }
  const counts = new Map<string, number>();
  let bad = 0;
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (!line.trim().startsWith('{')) return;
    const rec = JSON.parse(line);
    const p = recordProblems(rec);
    if (p.length) { bad++; console.log(`${file}:${i + 1}: ${p.join('; ')}`); }
    counts.set(rec.bench, (counts.get(rec.bench) ?? 0) + 1);
  });
  console.log([...counts].map(([k, n]) => `${k} ${n}`).join(', ') + (bad ? `; ${bad} bad record(s)` : '; all well-formed'));
  process.exit(bad ? 1 : 0);
}
