// Teacher outputs cached on disk (`kdqat qat --cache-teacher DIR`). The teacher is frozen, so its
// outputs for a batch depend only on the teacher's weights, the batch's inputs and which
// captures the losses ask for. Files are content-addressed by exactly that:
//
//   DIR/<teacher key>/<batch key>.safetensors
//     teacher key = sha256(config.json bytes, model.safetensors bytes, captures as JSON)
//     batch key   = sha256(input ids, attention mask, token types — raw int32 bytes)
//
// so a cache is reused by any later run with the same teacher and the same batches (same data,
// tokenizer, --seq-len, --batch and --seed give the same batches), and can never serve outputs
// of a different teacher or batch. Tensors are stored as F32, exactly as computed, so a cached
// run is bitwise equal to an uncached one. Each file holds `logits` and the per-layer lists
// (`hidden.0`, `probs.3`, …) the losses need. Writes are atomic (temp file + rename).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Tensor } from '../tensor/tensor.js';
import { readSafetensors, writeSafetensors, type WriteTensor } from '../io/safetensors.js';
import type { DistillOutputs } from '../distill/losses.js';

/** The per-layer lists of DistillOutputs, as stored. */
const LAYER_FIELDS = ['hidden', 'probs', 'scores', 'context', 'saOut', 'attnOut'] as const satisfies readonly (keyof DistillOutputs)[];

/** Hash of the teacher directory's weights and config plus what is captured. */
export function teacherKey(teacherDir: string, capture: unknown): string {
  const h = createHash('sha256');
  for (const name of ['config.json', 'model.safetensors']) {
    const file = path.join(teacherDir, name);
    if (!fs.existsSync(file)) throw new Error(`--cache-teacher: ${file} not found; the teacher cache is keyed by the teacher's config and weights`);
    h.update(name).update(fs.readFileSync(file));
  }
  h.update(JSON.stringify(capture ?? {}));
  return h.digest('hex').slice(0, 32);
}

/** Hash of a batch's integer inputs (null parts are marked, so they cannot collide). */
export function batchKey(parts: (Int32Array | null)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    if (!p) h.update('-');
    else h.update(`${p.length}:`).update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  }
  return h.digest('hex').slice(0, 40);
}

export class TeacherCache {
  readonly dir: string;
  hits = 0;
  misses = 0;

  constructor(root: string, key: string) {
    this.dir = path.join(root, key);
    fs.mkdirSync(this.dir, { recursive: true });
  }

  private file(key: string): string {
    return path.join(this.dir, `${key}.safetensors`);
  }

  /** The cached outputs for `key`, or null (a damaged file counts as a miss and is rewritten). */
  get(key: string): DistillOutputs | null {
    const file = this.file(key);
    if (!fs.existsSync(file)) return null;
    let tensors, metadata: Record<string, string>;
    try {
      ({ tensors, metadata } = readSafetensors(file));
    } catch {
      fs.rmSync(file, { force: true });
      return null;
    }
    const t = (name: string): Tensor => {
      const x = tensors.get(name)!;
      return new Tensor(x.data as Float32Array, x.shape);
    };
    const out = { logits: t('logits') } as DistillOutputs;
    for (const f of LAYER_FIELDS) {
      out[f] = [];
      for (let l = 0; tensors.has(`${f}.${l}`); l++) out[f].push(t(`${f}.${l}`));
    }
    if (metadata.attnOut === 'saOut') out.attnOut = out.saOut;
    this.hits++;
    return out;
  }

  put(key: string, o: DistillOutputs): void {
    this.misses++;
    const tensors = new Map<string, WriteTensor>();
    tensors.set('logits', { shape: [...o.logits.shape], data: o.logits.f32 });
    // A decoder's attnOut is its saOut (the same tensors): stored once.
    const alias = o.attnOut === o.saOut && o.saOut.length > 0;
    for (const f of LAYER_FIELDS) {
      if (f === 'attnOut' && alias) continue;
      o[f].forEach((x, l) => tensors.set(`${f}.${l}`, { shape: [...x.shape], data: x.f32 }));
    }
    // force: another run may have written the same (identical) file meanwhile.
    writeSafetensors(this.file(key), tensors, { dtype: 'F32', force: true, metadata: alias ? { attnOut: 'saOut' } : {} });
  }

  /** get, or compute and put. */
  fetch(key: string, compute: () => DistillOutputs): DistillOutputs {
    const hit = this.get(key);
    if (hit) return hit;
    const o = compute();
    this.put(key, o);
    return o;
  }
}
