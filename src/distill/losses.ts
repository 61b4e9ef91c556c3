// Knowledge-distillation losses (METHODS.md §3): any weighted sum of the logits KL (`pred`),
// label cross-entropy (`ce`), hidden-state MSE (`rep`), attention-score MSE (`attn_score`,
// TernaryBERT), attention-map KL (`attn_map`, Kim et al. 2022) and attention-output MSE
// (`attn_out`, with its `context` / `sa_out` variants), computed from what the student's and
// the teacher's forward passes hand back, padding excluded everywhere (see terms.ts).
import { Tensor } from '../tensor/tensor.js';
import { giveBack } from '../tensor/storage.js';
import type { Params } from '../nn/params.js';
import { add, scale, type TopkLogits } from '../tensor/ops/index.js';
import type { DecoderOutput } from '../models/llama.js';
import type { EncoderCapture, EncoderOutput } from '../models/encoder.js';
import { architecture, type ArchName } from '../models/registry.js';
import { lazyLogits, type Taps } from '../models/architecture.js';
import {
  attnMapKl, attnMapWeights, ceLoss, pairMask, predHeadLoss, predLoss, scoreMse, tokenMask, tokenMse, type TokenMask,
} from './terms.js';

export type LossName = 'pred' | 'ce' | 'rep' | 'attn_score' | 'attn_map' | 'attn_out' | 'context' | 'sa_out';
export const LOSS_NAMES: readonly LossName[] = ['pred', 'ce', 'rep', 'attn_score', 'attn_map', 'attn_out', 'context', 'sa_out'];
export type LossWeights = Partial<Record<LossName, number>>;
/** A registered architecture (src/models/registry.ts), e.g. 'llama'. */
export type Arch = ArchName;

/** What a forward pass hands back (the record's taps, src/models/architecture.ts); a teacher
 *  from the top-K cache (train/teacher-cache.ts) carries `topk` instead of usable logits. */
export type DistillOutputs = Taps & { topk?: TopkLogits };

/** Gives back the storage of a forward's outputs that nothing will read any more (a teacher's,
 *  once the backward of the loss that read them has run): every tap, and a decoder head's input
 *  and memoized logits, whose buffer is whole (storage.ts giveBack: a tap may be a reshape of
 *  the forward's own intermediate, which nothing else holds) and not one of `params` (the
 *  model's: a head's weight, say, is never given back). Without this they go to the collector,
 *  and the next batch's forward allocates them anew. */
export function releaseOutputs(o: DistillOutputs, params: Params): void {
  const seen = new Set<ArrayBufferLike>([...params.values()].map((p) => p.data.buffer));
  const give = (t: Tensor | null | undefined): void => {
    if (!t || t.dtype !== 'f32' || seen.has(t.data.buffer)) return;
    seen.add(t.data.buffer);
    giveBack(t.f32);
  };
  for (const k of ['hidden', 'probs', 'scores', 'context', 'saOut', 'attnOut'] as const) for (const t of o[k] ?? []) give(t);
  // A decoder's `logits` is a getter that would run the head: read its memo instead.
  if (o.head) {
    give(o.head.x);
    give(o.head.logits);
  } else give(Object.getOwnPropertyDescriptor(o, 'logits')?.value as Tensor | undefined);
}

/** Capture flags for a record's forward (a pre-norm decoder's attnOut is its saOut). */
export type Capture = EncoderCapture;

/** Which per-layer tensor each loss reads. `attn_out` is arch-dependent (METHODS.md §3). */
function source(name: LossName, arch: Arch): keyof Omit<Taps, 'logits' | 'head'> | null {
  switch (name) {
    case 'pred': case 'ce': return null;
    case 'rep': return 'hidden';
    case 'attn_score': return 'scores';
    case 'attn_map': return 'probs';
    case 'context': return 'context';
    case 'sa_out': return 'saOut';
    case 'attn_out': return architecture(arch).attnOutTap;
  }
}

/** Validates loss weights: known names, finite and ≥ 0. Returns the positive ones in order. */
export function activeLosses(w: LossWeights): [LossName, number][] {
  const out: [LossName, number][] = [];
  for (const [k, v] of Object.entries(w)) {
    if (!(LOSS_NAMES as readonly string[]).includes(k)) {
      throw new RangeError(`unknown distillation loss '${k}' (known: ${LOSS_NAMES.join(', ')})`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`distillation loss '${k}' has weight ${String(v)}; weights must be finite numbers ≥ 0`);
    }
  }
  for (const name of LOSS_NAMES) if ((w[name] ?? 0) > 0) out.push([name, w[name]!]);
  if (!out.length) throw new RangeError(`no distillation loss has a positive weight (known: ${LOSS_NAMES.join(', ')})`);
  return out;
}

/**
 * Loss weights from JSON (a config file or a CLI option), e.g. {"pred": 1, "rep": 1} or the
 * string "pred=1,rep=1,attn_map=0.5". `source` names where it came from, for errors.
 */
export function parseLossWeights(json: unknown, source: string): LossWeights {
  let obj: Record<string, unknown>;
  if (typeof json === 'string') {
    obj = {};
    for (const part of json.split(',').map((x) => x.trim()).filter(Boolean)) {
      const [k, v, extra] = part.split('=');
      if (v === undefined || extra !== undefined) throw new RangeError(`${source}: expected name=weight, got '${part}'`);
      obj[k.trim()] = Number(v);
    }
  } else if (json && typeof json === 'object' && !Array.isArray(json)) {
    obj = json as Record<string, unknown>;
  } else {
    throw new RangeError(`${source}: loss weights must be an object like {"pred": 1} or "pred=1,rep=1"`);
  }
  try {
    activeLosses(obj as LossWeights);
  } catch (e) {
    throw new RangeError(`${source}: ${(e as Error).message}`);
  }
  return { ...obj } as LossWeights;
}

/** The capture flags a forward pass needs for these weights, and nothing more. */
export function captureFor(w: LossWeights, arch: Arch): Capture {
  const cap: Capture = {};
  for (const [name] of activeLosses(w)) {
    const src = source(name, arch);
    if (src) cap[src] = true;
  }
  return cap;
}

/** A decoder forward's outputs; attn_out of a pre-norm decoder is o_proj's output (saOut). */
export function decoderOutputs(o: DecoderOutput): DistillOutputs {
  return lazyLogits({ hidden: o.hidden, probs: o.probs, scores: o.scores, context: o.context, saOut: o.saOut, attnOut: o.saOut }, o.head);
}

/** An encoder forward's outputs with the head's logits ((B, K) classifier or (B, T, V) MLM). */
export function encoderOutputs(enc: EncoderOutput, logits: Tensor): DistillOutputs {
  return { logits, hidden: enc.hidden, probs: enc.probs, scores: enc.scores, context: enc.context, saOut: enc.saOut, attnOut: enc.attnOut };
}

export interface DistillOptions {
  arch: Arch;
  /** Softmax temperature of `pred` (default 1). */
  tau?: number;
  /** (B, T) int32, 1 = token, 0 = padding: the mask both forward passes were run with. */
  mask?: Tensor | null;
  /** `ce` labels: (B, T) int32 next tokens (decoder; -100 = ignore) or (B) class ids (encoder). */
  labels?: Tensor | null;
  /** `pred` fused with the LM head and chunked (tensor/ops/head-kl.ts) when both outputs carry
   *  a head whose logits nobody has read yet and `ce` is off (default true); false: always the
   *  dense klDiv on (B, T, V) logits. Both compute the same loss (within float32 rounding). */
  fused?: boolean;
  /** Multiplies each term's weight (default 1). Data parallel (src/train/qat.ts): a rank's
   *  share of the term's normalizer in the global batch over its share of the rows, so terms
   *  averaged over tokens (rep, attn_*) weigh each rank by its tokens, not its rows. */
  termScale?: Partial<Record<LossName, number>>;
}

export interface DistillResult {
  /** Σ weight·term (a scalar with the student's autograd graph). */
  total: Tensor;
  /** Each positively weighted term, unweighted (for the log). */
  terms: Partial<Record<LossName, Tensor>>;
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * The weighted sum of the distillation losses between student outputs `s` and teacher outputs
 * `t` (teacher computed under noGrad). Losses with weight 0 are not computed. Errors name the
 * loss and what is missing or mismatched.
 */
export function distillLoss(s: DistillOutputs, t: DistillOutputs, w: LossWeights, o: DistillOptions): DistillResult {
  const active = activeLosses(w);
  const tau = o.tau ?? 1;
  if (!(tau > 0 && Number.isFinite(tau))) throw new RangeError(`distillLoss: temperature tau must be a positive number, got ${tau}`);
  const ss = logitsShape(s), ts = logitsShape(t);
  if (!sameShape(ss, ts)) {
    throw new RangeError(`distillLoss: student logits [${ss}] and teacher logits [${ts}] differ (vocabulary or label count mismatch?)`);
  }
  if (architecture(o.arch).kind === 'decoder' && ss.length !== 3) throw new RangeError(`distillLoss: decoder logits must be (B, T, V), got [${ss}]`);
  if (ss.length !== 2 && ss.length !== 3) throw new RangeError(`distillLoss: logits must be (B, K) or (B, T, V), got [${ss}]`);
  const B = ss[0];
  const T = sequenceLength(s, t, active, o.arch);
  const m = T === null ? null : tokenMask(o.mask, B, T);

  const terms: Partial<Record<LossName, Tensor>> = {};
  let total: Tensor | null = null;
  for (const [name, weight] of active) {
    const value = term(name, s, t, o, tau, m, active);
    terms[name] = value;
    const k = weight * (o.termScale?.[name] ?? 1);
    const wv = k === 1 ? value : scale(value, k);
    total = total ? add(total, wv) : wv;
  }
  return { total: total!, terms };
}

/** The logits' shape, from the head when they have not been computed (so they are not). */
function logitsShape(o: DistillOutputs): readonly number[] {
  if (o.topk) return [...o.topk.lead, o.topk.V];
  const h = o.head;
  return h && !h.logits ? [...h.x.shape.slice(0, -1), h.weight.shape[0]] : o.logits.shape;
}

/** The fused `pred`'s teacher (its head, or its dense logits), or null to run the dense klDiv:
 *  fused needs the student's head with its logits unread and no `ce` (which reads them). */
function fusedTeacher(s: DistillOutputs, t: DistillOutputs, active: [LossName, number][], o: DistillOptions): Tensor | { x: Tensor; weight: Tensor } | TopkLogits | null {
  if (t.topk) {
    // Only the fused op knows the top-K approximation; the student's head is always there for a
    // decoder (its GEMM is redone if 'ce' already computed the dense logits).
    if (!s.head) throw new RangeError(`distillLoss: the teacher's logits are top-${t.topk.K} (--cache-teacher-topk), which needs a decoder student (an LM head)`);
    return t.topk;
  }
  if (o.fused === false || !s.head || s.head.logits || active.some(([n]) => n === 'ce')) return null;
  const th = t.head;
  if (th && !th.logits) return th.x.requiresGrad || th.weight.requiresGrad ? null : th;
  return t.logits.requiresGrad ? null : t.logits;
}

/** T of the batch: from token logits, else from the first per-layer tensor a loss reads. */
function sequenceLength(s: DistillOutputs, t: DistillOutputs, active: [LossName, number][], arch: Arch): number | null {
  const ls = logitsShape(s);
  if (ls.length === 3) return ls[1];
  for (const [name] of active) {
    const src = source(name, arch);
    const x = src ? s[src][0] ?? t[src][0] : undefined;
    if (x) return src === 'probs' || src === 'scores' ? x.shape[2] : x.shape[1]; // (B, H, T, T) or (B, T, C)
  }
  return null; // classifier logits only: the mask plays no part
}

const WHAT: Record<string, string> = {
  hidden: 'hidden states', probs: 'attention probabilities', scores: 'attention scores',
  context: 'attention contexts', saOut: 'attention outputs before the residual (saOut)',
  attnOut: 'attention outputs after the residual and LayerNorm (attnOut)',
};

/** The per-layer student/teacher pairs of one loss, checked for presence, count and shape. */
function layers(name: LossName, s: DistillOutputs, t: DistillOutputs, arch: Arch, B: number, T: number | null): [Tensor, Tensor][] {
  const src = source(name, arch)!;
  const ss = s[src], ts = t[src];
  for (const [who, list] of [['student', ss], ['teacher', ts]] as const) {
    if (!list?.length) {
      throw new RangeError(`distillLoss: loss '${name}' needs ${WHAT[src]}, but the ${who}'s forward captured none; ` +
        `run both forwards with capture: captureFor(weights, '${arch}')`);
    }
  }
  if (ss.length !== ts.length) {
    throw new RangeError(`distillLoss: loss '${name}': student has ${ss.length} layers of ${WHAT[src]}, teacher ${ts.length}; student and teacher must have the same layer count`);
  }
  return ss.map((x, l) => {
    const y = ts[l];
    if (!sameShape(x.shape, y.shape)) {
      throw new RangeError(`distillLoss: loss '${name}' layer ${l}: student shape [${x.shape}] differs from teacher shape [${y.shape}]`);
    }
    const want = src === 'probs' || src === 'scores' ? 4 : 3;
    const tokT = want === 4 ? x.shape[2] : x.shape[1];
    if (x.ndim !== want || x.shape[0] !== B || (T !== null && tokT !== T) || (want === 4 && x.shape[3] !== x.shape[2])) {
      throw new RangeError(`distillLoss: loss '${name}' layer ${l}: expected ${want === 4 ? `(B, H, T, T)` : '(B, T, C)'} with B = ${B}${T !== null ? `, T = ${T}` : ''}, got [${x.shape}]`);
    }
    return [x, y];
  });
}

function sumOf(xs: Tensor[]): Tensor {
  return xs.reduce((a, b) => add(a, b));
}

function term(name: LossName, s: DistillOutputs, t: DistillOutputs, o: DistillOptions, tau: number, m: TokenMask | null, active: [LossName, number][]): Tensor {
  const B = logitsShape(s)[0];
  const T = m ? m.T : null;
  switch (name) {
    case 'pred': {
      const teacher = fusedTeacher(s, t, active, o);
      return teacher ? predHeadLoss(s.head!, teacher, tau, m) : predLoss(s.logits, t.logits, tau, m);
    }
    case 'ce': {
      const labels = o.labels;
      const want = s.logits.shape.slice(0, -1);
      if (!labels) throw new RangeError(`distillLoss: loss 'ce' has a positive weight but no labels were given`);
      if (labels.dtype !== 'i32' || !sameShape(labels.shape, want)) {
        throw new RangeError(`distillLoss: 'ce' labels must be int32 [${want}], got ${labels.dtype} [${labels.shape}]`);
      }
      return ceLoss(s.logits, labels, m);
    }
    case 'rep': case 'attn_out': case 'context': case 'sa_out':
      return sumOf(layers(name, s, t, o.arch, B, T).map(([x, y]) => tokenMse(x, y, m)));
    case 'attn_score': {
      const pairs = layers(name, s, t, o.arch, B, T);
      const pm = m ? pairMask(m) : null;
      return sumOf(pairs.map(([x, y]) => scoreMse(x, y, m, pm)));
    }
    case 'attn_map': {
      const pairs = layers(name, s, t, o.arch, B, T);
      const [, H, TT] = pairs[0][0].shape;
      const rw = attnMapWeights(m ?? tokenMask(null, B, TT), H);
      return sumOf(pairs.map(([x, y]) => attnMapKl(x, y, rw)));
    }
  }
}
