// The valid inputs every fuzz case starts from (scripts/fuzz-corpus.ts mutates one thing of one
// of them): tiny random checkpoints made the way the command tests make theirs
// (test/cli/fixture.ts), a student directory of each kind of code (signed, unsigned with zero
// points), a GGUF export, and small data files. Built once per process in a temp directory.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initParams } from '../../src/nn/params.js';
import { llamaParamSpec } from '../../src/models/llama.js';
import { bertParamSpec } from '../../src/models/bert.js';
import { saveModelDir } from '../../src/io/model-dir.js';
import { trainByteLevelBpe, trainWordPiece } from '../../src/tokenize/index.js';
import { runQuantize } from '../../src/cli/quantize.js';
import { runExport } from '../../src/cli/export.js';

// The tiny models and text of the command tests (test/cli/fixture.ts): the corpus mutates those.
export { TEXT, LLAMA_CFG, BERT_CFG } from '../../test/cli/fixture.js';
import { TEXT, LLAMA_CFG, BERT_CFG } from '../../test/cli/fixture.js';

/** Paths of the valid inputs (all under `root`). */
export interface Base {
  root: string;
  /** LLaMA model directory with tokenizer.json / tokenizer_config.json (bos 0, eos 1). */
  llama: string;
  /** BERT classifier directory (labels neg, pos). */
  bert: string;
  /** Student of `llama`, w4-channel (I8 codes). */
  student: string;
  /** Student of `llama`, asym 4-bit per group of 32 (U8 codes + I32 zero points). */
  studentAsym: string;
  /** `llama` exported as an F32 GGUF. */
  gguf: string;
  text: string;
  clsJsonl: string;
  clsTsv: string;
  mc: string;
  quantJson: string;
}

const quiet = (): void => {};

export async function buildBase(root = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-fuzz-base-'))): Promise<Base> {
  const p = (n: string): string => path.join(root, n);
  const bpe = trainByteLevelBpe([TEXT, TEXT], { vocabSize: LLAMA_CFG.vocabSize, minFrequency: 1 });
  saveModelDir(p('llama'), {
    config: { arch: 'llama', config: LLAMA_CFG, meta: { bosTokenId: 0, eosTokenId: 1 } },
    params: initParams(llamaParamSpec(LLAMA_CFG), 7), tokenizerJson: bpe,
  });
  const wp = trainWordPiece([TEXT, TEXT], { vocabSize: BERT_CFG.vocabSize, minFrequency: 1 });
  saveModelDir(p('bert'), {
    config: { arch: 'bert', config: BERT_CFG, meta: { head: 'classifier', labels: ['neg', 'pos'] } },
    params: initParams(bertParamSpec(BERT_CFG, { classifier: true }), 8), tokenizerJson: wp,
  });
  await runQuantize({ model: p('llama'), quant: 'w4-channel', out: p('student'), json: true }, quiet, quiet);
  fs.writeFileSync(p('quant.json'), JSON.stringify({ weights: { rule: { kind: 'asym', bits: 4 }, granule: { kind: 'group', size: 32 } } }, null, 2));
  await runQuantize({ model: p('llama'), quant: p('quant.json'), out: p('student-asym'), json: true }, quiet, quiet);
  await runExport({ model: p('llama'), format: 'gguf', out: p('llama.gguf'), type: 'f32', onNote: quiet });
  fs.writeFileSync(p('text.txt'), `${TEXT}\n\n${TEXT}\n`);
  const sentences = TEXT.split('. ').map((s) => s.replace(/\.$/, ''));
  fs.writeFileSync(p('cls.jsonl'), sentences.map((s, i) => JSON.stringify({ text: s, label: i % 2 ? 'pos' : 'neg' })).join('\n') + '\n');
  fs.writeFileSync(p('cls.tsv'), 'text\tlabel\n' + sentences.map((s, i) => `${s}\t${i % 2 ? 'pos' : 'neg'}`).join('\n') + '\n');
  fs.writeFileSync(p('mc.jsonl'), [
    { context: 'The river flows to the', choices: ['sea', 'mill'], label: 0 },
    { context: 'A quick brown fox jumps over the', choices: ['lazy dog', 'ocean'], label: 0 },
  ].map((o) => JSON.stringify(o)).join('\n') + '\n');
  return {
    root, llama: p('llama'), bert: p('bert'), student: p('student'), studentAsym: p('student-asym'), gguf: p('llama.gguf'),
    text: p('text.txt'), clsJsonl: p('cls.jsonl'), clsTsv: p('cls.tsv'), mc: p('mc.jsonl'), quantJson: p('quant.json'),
  };
}

// ---- safetensors as bytes: header JSON + data buffer, to mutate and rebuild ----------------------

export interface StFile { header: Record<string, unknown>; data: Buffer }

export function stParse(bytes: Buffer): StFile {
  const n = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')), data: Buffer.from(bytes.subarray(8 + n)) };
}

/** Header text (padded with spaces to a multiple of 8, as the reference writer does) + data. */
export function stBuild(f: StFile, headerText = JSON.stringify(f.header)): Buffer {
  const pad = (8 - (Buffer.byteLength(headerText) % 8)) % 8;
  const h = Buffer.from(headerText + ' '.repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, f.data]);
}

export interface StEntry { dtype: string; shape: number[]; data_offsets: [number, number] }

/** Tensor names in buffer order (skipping __metadata__). */
export function stNames(f: StFile): string[] {
  return Object.keys(f.header).filter((k) => k !== '__metadata__')
    .sort((a, b) => (f.header[a] as StEntry).data_offsets[0] - (f.header[b] as StEntry).data_offsets[0]);
}

/** Removes tensor `name` and its bytes, shifting the later offsets. */
export function stRemove(f: StFile, name: string): StFile {
  const e = f.header[name] as StEntry;
  const [b, en] = e.data_offsets;
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f.header)) {
    if (k === name) continue;
    if (k === '__metadata__') { header[k] = v; continue; }
    const x = v as StEntry;
    const d = x.data_offsets[0] >= en ? en - b : 0;
    header[k] = { ...x, data_offsets: [x.data_offsets[0] - d, x.data_offsets[1] - d] };
  }
  return { header, data: Buffer.concat([f.data.subarray(0, b), f.data.subarray(en)]) };
}

/** Appends tensor `name` (bytes at the end of the buffer). */
export function stAppend(f: StFile, name: string, dtype: string, shape: number[], bytes: Buffer): StFile {
  const start = f.data.length;
  return { header: { ...f.header, [name]: { dtype, shape, data_offsets: [start, start + bytes.length] } }, data: Buffer.concat([f.data, bytes]) };
}
