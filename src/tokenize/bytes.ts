// GPT-2 byte-level alphabet (Radford et al. 2019, openai/gpt-2 encoder.py `bytes_to_unicode`):
// every byte 0..255 maps to one printable Unicode character, so a BPE over these characters covers
// any UTF-8 text with no unknown token. Printable Latin-1 bytes map to themselves; the other 68
// bytes (controls, space, 0x7F-0xA0, 0xAD) map to U+0100.. in byte order (space -> 'Ġ', '\n' -> 'Ċ').

/** BYTE_TO_CHAR[b] = the character standing for byte b. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return out;
})();

/** Code unit of a byte-level character -> its byte (-1 if not a byte-level character). */
const CHAR_TO_BYTE = (() => {
  const t = new Int16Array(324).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => { t[c.charCodeAt(0)] = b; });
  return t;
})();

/**
 * The 256 byte-level characters sorted by code point: the initial alphabet of the BPE trainer,
 * in the order HF's BpeTrainer gives it ids (compute_alphabet sorts by char). It is also the order
 * of GPT-2's vocab.json.
 */
export const BYTE_ALPHABET: readonly string[] = [...BYTE_TO_CHAR].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));

/**
 * The GPT-2 pre-tokenizer split (HF pre_tokenizers::byte_level), written exactly as
 * @huggingface/tokenizers compiles it, so our training and fast encoding split text as it does.
 */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Appends the bytes of a byte-level token to `out` at `pos`; returns the new position, or -1 if not byte-level. */
export function byteLevelToBytes(token: string, out: Uint8Array, pos: number): number {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < 324 ? CHAR_TO_BYTE[c] : -1;
    if (b < 0) return -1;
    out[pos++] = b;
  }
  return pos;
}
