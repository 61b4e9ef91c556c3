// Record types shared by the corpora, split, classification and multiple-choice modules.

/** One document of a corpus. `id` is stable across releases of the data (file name, year…):
 * splits hash it, so it must not depend on the position of the document in the array. */
export interface Document {
  id: string;
  text: string;
  meta: Record<string, string | number>;
}

export interface Corpus {
  name: string;
  documents: Document[];
}

/** The minimal tokenizer this module needs; any BPE/WordPiece wrapper fits. */
export interface TokenEncoder {
  encode(text: string): number[];
}

export interface ClassificationExample {
  text: string;
  textPair?: string;
  label: number;
}

export interface ClassificationData {
  examples: ClassificationExample[];
  /** labels[id] is the original label (a string, or the integer as a string). */
  labels: string[];
}

/** One multiple-choice item; the same shape is read from and written to JSONL. A choice is
 *  scored as the log-likelihood of " " + choice after the context; with `continuation` (partial
 *  scoring, Winogrande) each choice is a context instead, the score is that of
 *  " " + continuation after it, and `context` is unused (""). */
export interface MultipleChoiceRecord {
  context: string;
  choices: string[];
  label: number;
  id?: string;
  continuation?: string;
}
