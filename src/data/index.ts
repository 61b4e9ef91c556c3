// kdqat data layer: corpora, splits, packing, MLM masking, classification and multiple-choice
// data. Text in, token ids out via any tokenizer with encode(text): number[].
export * from './types.js';
export { DataError } from './errors.js';
export { splitSentences, splitParagraphs } from './sentences.js';
export { loadCorpus, CORPUS_NAMES, type CorpusName } from './corpora.js';
export { BROWN_GENRES, detokenize, brownToText } from './brown.js';
export { isJsonl, jsonlTexts, loadTextCorpus, readUtf8File } from './text.js';
export * from './splits.js';
export * from './packing.js';
export * from './mlm.js';
export { loadClassification, type ClassificationOptions } from './classification.js';
export * from './brown-genre.js';
export * from './word-order.js';
export { loadMultipleChoice, loadMultipleChoiceFile, checkMultipleChoice } from './multiple-choice.js';
export { writeJsonl, type WriteOptions } from './jsonl.js';
export * from './continuation.js';
export { buildWordNetTask, parseDataLine, type WordNetPos, type WordNetTaskOptions } from './wordnet.js';
export * from './tasks.js';
