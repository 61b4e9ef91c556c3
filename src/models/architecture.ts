// The architecture record (STYLE.md "Records and registries"): everything kdqat needs to know
// about one model family, as data and functions in one place, so that loading, pretraining,
// fine-tuning, QAT, evaluation and the CLI ask the record (or a capability on it) and never test
// a family's name. One family = one record file (llama-arch.ts, bert-arch.ts) + one line in
// registry.ts. The model code itself (config type, parameter spec, forward) stays in llama.ts /
// bert.ts; the record wires it up.
import type { Tensor } from '../tensor/tensor.js';
import { linear } from '../tensor/ops/index.js';
import { headPrecision, withCompute, type ComputePrecision } from '../tensor/compute.js';
import type { Init, Params, WeightFn } from '../nn/params.js';
import type { TokenizerJson } from '../tokenize/schema.js';
import type { ConfigReader, Obj } from './config-reader.js';
import type { OnnxSpec } from './onnx-spec.js';
import type { PositionEmbeddingType } from './relative-position.js';
import type { LegacyTokenizer } from '../io/tokenizer-from-vocab.js';

/** Causal decoder (next-token LM) or bidirectional encoder. */
export type ArchKind = 'decoder' | 'encoder';

/** The heads a model carries (lm: causal LM head, mlm: masked-LM head, classifier: sequence
 *  classifier on the pooled first token). */
export interface Heads { lm: boolean; mlm: boolean; classifier: boolean }

/** What a forward pass hands back for distillation and analysis (the "taps"), per layer.
 *  attnOut of a pre-norm decoder is its saOut (METHODS.md §3). */
export interface Taps {
  logits: Tensor; // (B, T, V) decoder LM head, (B, K) encoder classifier
  hidden: Tensor[]; // L+1 × (B, T, C), embedding output first
  probs: Tensor[]; // L × (B, H, T, T)
  scores: Tensor[]; // L × (B, H, T, T), masked entries 0
  context: Tensor[]; // L × (B, T, C), softmax(QKᵀ)V before the output projection
  saOut: Tensor[]; // L × (B, T, C), after the output projection, before the residual
  attnOut: Tensor[]; // L × (B, T, C): encoder after residual + LayerNorm; decoder = saOut
  /** A decoder's LM head (logits = x·weightᵀ, see lazyLogits): lets the logits KL run fused
   *  and chunked (tensor/ops/head-kl.ts) without ever holding (B, T, V). Absent: encoders. */
  head?: LmHead;
}

/** The LM head as the forward pass applies it: logits (..., V) = x·weightᵀ, with x (..., C) the
 *  head's input (after the WeightFn's input transform) and weight (V, C) the value the WeightFn
 *  returned (fake-quantized, or the tied embedding). `logits` memoizes the dense product once
 *  something has read it (null until then). */
export interface LmHead {
  x: Tensor;
  weight: Tensor;
  logits: Tensor | null;
  /** The head precisions in force at the forward (tensor/compute.ts headPrecision: the GEMM
   *  precision unless the scope gave the head its own): the logits, read later or fused into
   *  the KL, are computed in `compute`, their backward (∂x, ∂W) in `backward`. */
  compute?: ComputePrecision;
  backward?: ComputePrecision;
}

/** `o` with `logits` defined as head.x·head.weightᵀ, computed on the first read and kept
 *  (head.logits). A consumer that needs logits (evaluation, `ce`) reads them as before; the
 *  fused logits KL reads `head` instead and so never materializes (B, T, V). The product is
 *  recorded for autograd if recording is on when it is first read, as any op. */
export function lazyLogits<T extends object>(o: T, head: LmHead): T & { logits: Tensor; head: LmHead } {
  const hp = headPrecision();
  head.compute ??= hp.forward;
  head.backward ??= hp.backward;
  Object.defineProperty(o, 'head', { value: head, enumerable: true, writable: true, configurable: true });
  Object.defineProperty(o, 'logits', {
    enumerable: true, configurable: true,
    get: () => (head.logits ??= withCompute(head.compute!, () => linear(head.x, head.weight), { backward: head.backward })),
    set: (v: Tensor) => { head.logits = v; },
  });
  return o as T & { logits: Tensor; head: LmHead };
}
/** Which taps a forward should collect. */
export type TapRequest = Partial<Record<Exclude<keyof Taps, 'logits' | 'head'>, boolean>>;

export interface ForwardInput {
  ids: Tensor; // (B, T) int32
  /** (B, T) int32, 1 = real token, 0 = padding. */
  mask?: Tensor | null;
  tokenTypeIds?: Tensor | null;
}
export interface ForwardOptions {
  weight?: WeightFn;
  capture?: TapRequest;
  /** Dropout seed (training: fine-tuning); dropout is off when undefined. */
  dropoutSeed?: number;
}

export interface LmLogitsOptions {
  attentionMask?: Tensor | null;
  weight?: WeightFn;
  /** Masked-LM (encoders): dropout seed (pretraining), dropout off when undefined. */
  dropoutSeed?: number;
  /** Masked-LM (encoders): only the head rows of these flattened positions b·T + t, giving
   *  (N, V) — MLM trains on ~15 % of the tokens, and the head is most of the cost. */
  rows?: Int32Array;
}

/** How a classifier's input is laid out around one or two texts (HF's tokenizer templates):
 *  BERT `[CLS] a [SEP] b [SEP]` with token types 0/1, RoBERTa `<s> a </s></s> b </s>` without. */
export interface ClassifierInput {
  /** Separator tokens between the two texts of a pair (1 or 2). */
  pairSeparators: number;
  /** Whether the model reads token types (segment ids); without, they are not built. */
  tokenTypes: boolean;
}

/** A model of family C: what `Model` (model.ts) is per registry entry. `X` are family-specific
 *  fields (BERT: which heads it carries). */
export type ArchModel<C, X = unknown> = { arch: string; config: C; params: Params } & X;

/** Sizes `kdqat pretrain` builds a model from (its --hidden, --layers, … flags). */
export interface ModelSizes {
  vocab: number; hidden: number; layers: number; heads: number; kvHeads: number;
  intermediate: number; seq: number; dropout: number;
  /** How attention sees positions; families without `pretrain.relativePositions` take absolute only. */
  positionEmbedding?: PositionEmbeddingType;
}

/** Special-token ids config.json names (null: not set there; use the tokenizer's). */
export interface SpecialIds {
  bos: number | null;
  /** HF allows a list; the first is the one GGUF and single-EOS users take. */
  eos: number | number[] | null;
  pad: number | null;
}

/** A tensor a checkpoint stores as several kdqat parameters stacked by rows (Phi-3's qkv_proj =
 *  [q_proj; k_proj; v_proj], gate_up_proj = [gate_proj; up_proj]): the loader splits it into
 *  `parts` (in this order, `rows` each), the saver and the GGUF exporter stack them again. Inside
 *  kdqat only the parts exist, so freezing or quantizing v_proj acts on exactly the V rows. */
export interface FusedTensor { name: string; parts: readonly { name: string; rows: number }[] }

/** A GGUF metadata value (the writer's type: u32 counts, f32 reals, as gguf-py writes them). */
export type GgufKv = [key: string, value: { type: 'u32'; value: number } | { type: 'f32'; value: number } | { type: 'string'; value: string } | { type: 'bool'; value: boolean }];

/** How a family goes into a llama.cpp GGUF file (convert_hf_to_gguf.py's model class for it). */
export interface GgufLayout<C> {
  /** general.architecture (llama.cpp's LLM_ARCH name). */
  arch: string;
  /** HF name (as stored, i.e. fused names for fused tensors) → GGUF tensor name. */
  tensorName(hfName: string): string;
  /** q_proj/k_proj rows permuted for llama.cpp's GPT-J-style RoPE (convert's LlamaModel.permute);
   *  false for the NEOX-RoPE architectures (qwen2, qwen3, phi3), which take HF's order. */
  permuteQK: boolean;
  /** The `<arch>.*` hyperparameter keys. */
  kv(config: C): GgufKv[];
  /** Extra F32 tensors the converter writes (llama3 rope scaling: rope_freqs.weight). */
  extraTensors?(config: C): { name: string; shape: number[]; data: Float32Array }[];
  /** Where llama.cpp's model differs from kdqat's beyond rounding (printed by the exporter). */
  notes?(config: C): string[];
}

/** A quantizable weight outside the blocks' Linears (an embedding read through the WeightFn,
 *  a head): `name` is the parameter, `logical` what patterns and student files call it. */
export interface ExtraTarget { name: string; logical: string }

export interface Architecture<C = any, M = any, X = any> {
  /** Registry key: `Model.arch`, the HF model_type, the --arch value of `kdqat pretrain`. */
  readonly name: string;
  /** For messages: "LLaMA", "BERT". */
  readonly label: string;
  readonly kind: ArchKind;
  /** HF `architectures` class names → the head each carries ('base': none). */
  readonly hfClasses: Readonly<Record<string, keyof Heads | 'base'>>;
  /** The heads this family can carry at all (finetune needs `classifier`, generate `lm`). */
  readonly canCarry: Readonly<Heads>;
  /** The tap the `attn_out` loss reads (METHODS.md §3): the attention sub-layer's output, which
   *  is o_proj's output in a pre-norm decoder and the post-residual LayerNorm in BERT. */
  readonly attnOutTap: 'saOut' | 'attnOut';

  /** config.json ⇄ (config, meta); meta = what is not numerics (special ids, labels, dtype, head). */
  readonly config: {
    parse(r: ConfigReader): { config: C; meta: M };
    toJson(config: C, meta: M): Obj;
    /** Meta for a model built in kdqat, completed from `partial`. */
    defaultMeta(partial?: Partial<M>): M;
    /** Extra files save_pretrained writes beside config.json (generation_config.json). */
    extraFiles?(meta: M): Record<string, Obj>;
  };
  /** The slow-tokenizer files the family's checkpoints may ship instead of tokenizer.json, from
   *  which kdqat builds one as transformers' converter does (src/io/tokenizer-from-vocab.ts):
   *  BERT's vocab.txt, RoBERTa's vocab.json + merges.txt. */
  readonly legacyTokenizer?: LegacyTokenizer;
  /** Pretraining from scratch: flag checks (errors name the flag), config from the sizes, the
   *  tokenizer trainer, and the meta of the saved model. */
  readonly pretrain: {
    check(s: ModelSizes): void;
    config(s: ModelSizes): C;
    tokenizer: { name: string; train(texts: string[], vocabSize: number): TokenizerJson };
    meta(specials: { bos?: number; eos?: number; pad?: number }): Partial<M>;
    /** The family can be built with relative position scores (BERT's position_embedding_type). */
    relativePositions?: boolean;
  };

  /** Which heads a (config, meta) carries; a Model's own fields for families that record them. */
  headsOf(meta: M): Heads;
  /** The model fields beyond arch/config/params for these heads (BERT: `heads`). */
  modelFields(heads: Heads): X;
  /** The heads of a built model. */
  modelHeads(model: ArchModel<C, X>): Heads;
  /** Meta that makes save_pretrained name the class of these heads (throws if none fits). */
  metaForHeads(heads: Heads): Partial<M>;
  /** Class labels by index (classifier), null = HF's LABEL_i defaults or no classifier. */
  labels(meta: M): string[] | null;
  specialIds(meta: M): SpecialIds;
  /** For messages: "a LLaMA decoder (causal LM", "a BERT encoder (classifier head". */
  describe(heads: Heads): string;

  /** Parameter table in Hugging Face names. */
  paramSpec(config: C, heads: Heads): Map<string, { shape: number[]; init: Init }>;
  /** The forward pass with taps: decoder → LM logits; encoder → classifier logits. */
  forward(model: ArchModel<C, X>, x: ForwardInput, o?: ForwardOptions): Taps;
  /** Token logits (B, T, V): causal for a decoder, masked-LM for an encoder. */
  lmLogits(model: ArchModel<C, X>, ids: Tensor, o?: LmLogitsOptions): Tensor;
  /** Encoders: the last hidden state (B, T, C), no head (`kdqat pretrain --objective electra`
   *  puts its replaced-token detector on it); `o.rows` is not read. Absent for decoders. */
  encode?(model: ArchModel<C, X>, ids: Tensor, o?: LmLogitsOptions): Tensor;

  /** The classifier's input layout (default: BERT's, `{ pairSeparators: 1, tokenTypes: true }`). */
  readonly classifierInput?: ClassifierInput;

  /** What quantization rules, freeze presets and the signal log refer to. */
  readonly modules: {
    /** Parameter name → module kind, first match wins (nn/modules.ts moduleOf reads every
     *  record's rules through the registry); names no rule matches are 'other'. */
    rules: readonly (readonly [RegExp, string])[];
    /** Module kinds of the blocks' Linear weights (nn/modules.ts moduleOf), in plot order; these
     *  are the quantizable weights inside the blocks. */
    kinds: readonly string[];
    /** Named freeze presets (--freeze ov): module patterns. */
    freezePresets: Readonly<Record<string, readonly string[]>>;
    /** Quantizable weights before / after the blocks' Linears. */
    extraTargets(config: C): { first: ExtraTarget[]; last: ExtraTarget[] };
    /** A student file stores weight `stored` under another parameter's name (a tied head): the
     *  config that unties it, or null if this family has no such case. */
    untie?(config: C, stored: string): C | null;
    /** Module patterns quantized when a quantization config names none (METHODS.md §2);
     *  absent: quant/config.ts DEFAULT_MODULES of the family. */
    defaultQuant?: readonly string[];
  };

  /** Stored tensors that are stacks of kdqat parameters (see FusedTensor); absent: none. */
  fused?(config: C): FusedTensor[];

  /** Reading checkpoints: stored-name fixes, tied copies, tensors to skip. */
  readonly load: {
    /** Stored name → HF name, given every stored name (for prefix checks). */
    renamer?(all: readonly string[]): (stored: string) => string;
    /** Stored tensors that must equal another parameter (tied weights): name → source. */
    tied: Readonly<Record<string, string>>;
    /** Why `tied` holds (for the error when a copy differs). */
    tiedReason(name: string): string;
    /** Stored but unused by these heads (not an error). */
    skip?(name: string, meta: M): boolean;
    /** config.json names no class: the (config, meta) from the stored tensors' shapes. */
    fromTensors?(config: C, meta: M, shapes: ReadonlyMap<string, readonly number[]>): { config: C; meta: M } | null;
  };

  /** llama.cpp: how to write the family as GGUF (null: not exportable). */
  readonly gguf: GgufLayout<C> | null;
  /** ONNX export (io/onnx-export.ts): the graph of this family as data (onnx-spec.ts) for a
   *  config and the heads the model carries; absent = not exportable to ONNX. */
  readonly onnx?: { spec(config: C, heads: Heads): OnnxSpec };
}
