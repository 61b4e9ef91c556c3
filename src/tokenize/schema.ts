// The tokenizer.json schema of Hugging Face `tokenizers` (the Rust crate's serde format, also read by
// Python `tokenizers`/`transformers` and by @huggingface/tokenizers). Only the parts we write are
// typed precisely; everything else stays open so that real hub files type-check when loaded.
// Field order in these objects follows the Rust serializers, so our files look like real ones.

/** One entry of `added_tokens` (tokenizers::AddedTokenWithId). */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** A component (normalizer, pre_tokenizer, post_processor, decoder): tagged by `type`. */
export interface ComponentJson {
  type: string;
  [key: string]: unknown;
}

/** model = BPE (tokenizers::models::bpe::BPE). Merges: legacy "a b" strings or [a, b] pairs. */
export interface BpeModelJson {
  type: 'BPE';
  dropout: number | null;
  unk_token: string | null;
  continuing_subword_prefix: string | null;
  end_of_word_suffix: string | null;
  fuse_unk: boolean;
  byte_fallback: boolean;
  ignore_merges: boolean;
  vocab: Record<string, number>;
  merges: string[] | [string, string][];
}

/** model = WordPiece (tokenizers::models::wordpiece::WordPiece). */
export interface WordPieceModelJson {
  type: 'WordPiece';
  unk_token: string;
  continuing_subword_prefix: string;
  max_input_chars_per_word: number;
  vocab: Record<string, number>;
}

export interface TokenizerJson {
  version: string;
  truncation: unknown;
  padding: unknown;
  added_tokens: AddedTokenJson[];
  normalizer: ComponentJson | null;
  pre_tokenizer: ComponentJson | null;
  post_processor: ComponentJson | null;
  decoder: ComponentJson | null;
  model: BpeModelJson | WordPieceModelJson | ({ type: string } & Record<string, unknown>);
}

/** A special token as the trainers add it: special, never normalized (as AddedToken::from(s, true)). */
export function specialToken(id: number, content: string): AddedTokenJson {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * A vocab object without a prototype, so that a token such as "__proto__" or "constructor" is an
 * ordinary own key (with `{}` the assignment vocab["__proto__"] = 5 would be silently lost).
 */
export function vocabFromTokens(tokens: readonly string[]): Record<string, number> {
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((t, i) => { vocab[t] = i; });
  return vocab;
}

/** TemplateProcessing piece: a special token or a sequence ($A / $B) with its type id. */
export type TemplatePiece =
  | { SpecialToken: { id: string; type_id: number } }
  | { Sequence: { id: 'A' | 'B'; type_id: number } };

/**
 * TemplateProcessing post-processor (tokenizers::processors::template). `single`/`pair` use the
 * serialized (object) form, and `special_tokens` maps each token to its ids, as in real files.
 */
export function templateProcessing(
  single: TemplatePiece[], pair: TemplatePiece[], ids: ReadonlyMap<string, number>,
): ComponentJson {
  const special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }> = Object.create(null);
  for (const piece of [...single, ...pair]) {
    if (!('SpecialToken' in piece)) continue;
    const tok = piece.SpecialToken.id;
    const id = ids.get(tok);
    if (id === undefined) throw new Error(`template token ${tok} is not a special token of the vocab`);
    special_tokens[tok] = { id: tok, ids: [id], tokens: [tok] };
  }
  return { type: 'TemplateProcessing', single, pair, special_tokens };
}

export const special = (id: string, type_id = 0): TemplatePiece => ({ SpecialToken: { id, type_id } });
export const seq = (id: 'A' | 'B', type_id = 0): TemplatePiece => ({ Sequence: { id, type_id } });

/**
 * Ids that the post-processor puts around one sequence (-1 marks the sequence), or null when it
 * adds nothing (ByteLevel post-processor or none).
 */
export function templateIds(json: TokenizerJson, idOf: (t: string) => number | undefined): number[] | null {
  const post = json.post_processor;
  if (post === null || post.type !== 'TemplateProcessing') return null;
  const single = post.single as Array<{ SpecialToken?: { id: string }; Sequence?: { id: string } }>;
  return single.flatMap((p) => {
    if (p.SpecialToken) {
      const id = idOf(p.SpecialToken.id);
      if (id === undefined) throw new Error(`template token ${p.SpecialToken.id} is not in the vocab`);
      return [id];
    }
    return p.Sequence?.id === 'A' ? [-1] : [];
  });
}

/** ids inside the one-sequence template from templateIds (−1 marks where they go); ids as they
 *  are without a template or when special tokens are not wanted. */
export function withTemplate(single: number[] | null, ids: number[], addSpecialTokens: boolean): number[] {
  if (!addSpecialTokens || single === null) return ids;
  const out: number[] = [];
  for (const t of single) {
    if (t >= 0) out.push(t);
    else for (let i = 0; i < ids.length; i++) out.push(ids[i]);
  }
  return out;
}
