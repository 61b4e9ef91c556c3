// Tokenizer training and loading: byte-level BPE (decoder models) and WordPiece (encoder models),
// written as Hugging Face tokenizer.json files and loaded through @huggingface/tokenizers.
//
//   const json = trainByteLevelBpe(sotuTexts(), { vocabSize: 4096, specialTokens: ['<s>', '</s>', '<pad>'] });
//   saveTokenizer('out/tokenizer.json', json);            // { force: true } to overwrite
//   const tok = loadTokenizer('out/tokenizer.json');
//   tok.decode(tok.encode('Hello')) === 'Hello';           // tok.specials.pad === 2, tok.vocabSize === 4096
export { trainByteLevelBpe, DEFAULT_BPE_SPECIALS, type ByteLevelBpeOptions } from './train-bpe.js';
export { trainSentencePieceBpe, LLAMA2_NORMALIZER, LLAMA2_DECODER, type SentencePieceBpeOptions } from './train-spm-bpe.js';
export { trainWordPiece, DEFAULT_WORDPIECE_SPECIALS, type WordPieceOptions } from './train-wordpiece.js';
export { saveTokenizer, serializeTokenizer, readTokenizerJson, checkTokenizerJson, type SaveOptions } from './io.js';
export { loadTokenizer, type LoadedTokenizer, type SpecialIds } from './load.js';
export { ByteLevelBpeCodec } from './fast-bpe.js';
export { WordPieceCodec } from './fast-wordpiece.js';
export { sotuTexts, mobyDickText } from './corpus.js';
export type { TokenizerJson, AddedTokenJson, BpeModelJson, WordPieceModelJson } from './schema.js';
