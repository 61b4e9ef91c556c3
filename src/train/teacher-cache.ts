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
//
// Top-K (`--cache-teacher-topk K`, decoders): instead of `logits` (B·T·V floats) a file holds,
// per token, the K largest teacher logits `topk.logits` (B, T, K) and their ids `topk.ids`
// (I32), the full row's logsumexp at the run's τ `topk.lse` (B, T) and the log of the
// probability mass outside those K ids `topk.logtail` (B, T); the teacher key then includes K
// and τ. The `pred` loss uses the top-K approximation (tensor/ops/head-kl.ts topkLogits,
// kernels.ts topkKl; docs/distillation.md). A batch computed on a miss is reduced to exactly
// what is stored before it is used, so a run is the same whether its batches hit or miss
// (and --resume stays bitwise).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Tensor } from '../tensor/tensor.js';
import { readSafetensors, writeSafetensors, type WriteTensor } from '../io/safetensors.js';
import type { DistillOutputs } from '../distill/losses.js';
import { topkLogits, type TopkLogits } from '../tensor/ops/index.js';
import { nativeIsaInfo } from '../backend/index.js';

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
  // The kernels' code paths round differently (AVX-512 vs AVX2 vs portable): outputs cached on
  // another path are not the ones this run computes, so they get another key (a cache shared
  // by machines of different ISAs, or KDQAT_ISA, stays bitwise; reference-backend keys unchanged).
  const info = nativeIsaInfo();
  if (info) h.update(JSON.stringify(Object.entries(info.families).map(([k, v]) => [k, v.selected]).sort()));
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

/** Teacher outputs whose logits are top-K: `logits` cannot be read (only `pred` uses `topk`). */
function withTopk(o: DistillOutputs, topk: TopkLogits): DistillOutputs {
  const out = { ...o, topk } as DistillOutputs;
  delete (out as { head?: unknown }).head;
  Object.defineProperty(out, 'logits', {
    enumerable: false,
    get: () => {
      throw new RangeError(`the teacher's logits are cached as their top ${topk.K} per token (--cache-teacher-topk); only the 'pred' loss can use them`);
    },
  });
  return out;
}

export interface TeacherCacheOptions {
  /** Keep the top K logits per token (0/absent: the full logits), at temperature tau. */
  topk?: number;
  tau?: number;
}

export class TeacherCache {
  readonly dir: string;
  readonly topk: number;
  readonly tau: number;
  hits = 0;
  misses = 0;

  constructor(root: string, key: string, opts: TeacherCacheOptions = {}) {
    this.dir = path.join(root, key);
    this.topk = opts.topk ?? 0;
    this.tau = opts.tau ?? 1;
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
    const out = {} as DistillOutputs;
    if (!this.topk) out.logits = t('logits');
    for (const f of LAYER_FIELDS) {
      out[f] = [];
      for (let l = 0; tensors.has(`${f}.${l}`); l++) out[f].push(t(`${f}.${l}`));
    }
    if (metadata.attnOut === 'saOut') out.attnOut = out.saOut;
    this.hits++;
    if (!this.topk) return out;
    const lt = tensors.get('topk.logits')!;
    const [B, T, K] = lt.shape;
    return withTopk(out, {
      lead: [B, T], V: Number(metadata.vocab), K, tau: this.tau,
      ids: tensors.get('topk.ids')!.data as Int32Array, logits: lt.data as Float32Array,
      lse: t('topk.lse').f32, logTail: t('topk.logtail').f32,
    });
  }

  put(key: string, o: DistillOutputs): void {
    this.misses++;
    const tensors = new Map<string, WriteTensor>();
    const meta: Record<string, string> = {};
    if (o.topk) {
      const { lead, K, V } = o.topk;
      tensors.set('topk.ids', { shape: [...lead, K], data: o.topk.ids, dtype: 'I32' });
      tensors.set('topk.logits', { shape: [...lead, K], data: o.topk.logits });
      tensors.set('topk.lse', { shape: [...lead], data: o.topk.lse });
      tensors.set('topk.logtail', { shape: [...lead], data: o.topk.logTail });
      meta.vocab = String(V);
    } else tensors.set('logits', { shape: [...o.logits.shape], data: o.logits.f32 });
    // A decoder's attnOut is its saOut (the same tensors): stored once.
    const alias = o.attnOut === o.saOut && o.saOut.length > 0;
    for (const f of LAYER_FIELDS) {
      if (f === 'attnOut' && alias) continue;
      o[f].forEach((x, l) => tensors.set(`${f}.${l}`, { shape: [...x.shape], data: x.f32 }));
    }
    // force: another run may have written the same (identical) file meanwhile.
    if (alias) meta.attnOut = 'saOut';
    writeSafetensors(this.file(key), tensors, { dtype: 'F32', force: true, metadata: meta });
  }

  /** get, or compute and put. With top-K, what is computed is reduced to its top-K form first
   *  and that is what is returned, as a hit would return it. */
  fetch(key: string, compute: () => DistillOutputs): DistillOutputs {
    const hit = this.get(key);
    if (hit) return hit;
    let o = compute();
    if (this.topk) o = withTopk(o, topkLogits(o.logits, this.topk, this.tau));
    this.put(key, o);
    return o;
  }
}
