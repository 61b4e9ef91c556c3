// Fused checkpoint tensors (architecture.ts FusedTensor): a stored tensor that is several kdqat
// parameters stacked by rows. The loader splits, the saver and the GGUF exporter stack; both
// directions copy rows, so a load → save round trip gives back the same bytes.
import type { Architecture, FusedTensor } from './architecture.js';

/** The fused groups of a config (none for most families). */
export const fusedOf = (rec: Architecture, config: unknown): FusedTensor[] => rec.fused?.(config) ?? [];

/** Stored layout of a parameter table: each fused group replaces its parts, at the place of its
 *  first part. name → shape and (for a fused tensor) its parts. */
export function storedLayout(spec: ReadonlyMap<string, { shape: readonly number[] }>, fused: readonly FusedTensor[]):
  Map<string, { shape: number[]; parts?: FusedTensor['parts'] }> {
  const partOf = new Map<string, FusedTensor>();
  for (const f of fused) for (const p of f.parts) partOf.set(p.name, f);
  const out = new Map<string, { shape: number[]; parts?: FusedTensor['parts'] }>();
  for (const [name, { shape }] of spec) {
    const f = partOf.get(name);
    if (!f) { out.set(name, { shape: [...shape] }); continue; }
    if (out.has(f.name)) continue;
    const cols = shape[1];
    for (const p of f.parts) {
      const s = spec.get(p.name)?.shape;
      if (!s || s.length !== 2 || s[0] !== p.rows || s[1] !== cols) throw new Error(`fused tensor ${f.name}: part ${p.name} has shape [${s}], expected [${p.rows}, ${cols}]`);
    }
    out.set(f.name, { shape: [f.parts.reduce((n, p) => n + p.rows, 0), cols], parts: f.parts });
  }
  return out;
}

/** Stacks the parts' row-major data (rows × cols each) into the fused tensor's. */
export function stackRows(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

/** Splits a fused tensor's row-major data (total rows × cols) into its parts, copying. */
export function splitRows(data: Float32Array, parts: FusedTensor['parts'], cols: number): Float32Array[] {
  let off = 0;
  return parts.map((p) => {
    const s = data.slice(off, off + p.rows * cols);
    off += p.rows * cols;
    return s;
  });
}
