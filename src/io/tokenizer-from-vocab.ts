// A tokenizer.json for a checkpoint that ships only its slow tokenizer's files, as many fine-tuned
// models on the Hub do (the record's `legacyTokenizer` says which), built as transformers'
// converter (convert_slow_tokenizer.py) builds the fast tokenizer from the slow one, so the ids
// are the ones transformers gives.
// 'bert-vocab' (BertConverter; BERT, DistilBERT):
//   vocab.txt     one token per line, id = line number from 0 (a later duplicate wins, as in
//                 BertTokenizer's load_vocab);
//   model         WordPiece: unk_token, "##" continuation, 100 characters per word at most;
//   normalizer    BertNormalizer: clean_text, handle_chinese_chars = tokenize_chinese_chars
//                 (default true), strip_accents (default null: follows lowercase), lowercase =
//                 do_lower_case (default true);
//   pre-tokenizer BertPreTokenizer; post-processor [CLS] $A [SEP] / [CLS] $A [SEP] $B:1 [SEP]:1;
//   decoder       WordPiece ("##", cleanup);
//   special tokens unk/sep/pad/cls/mask_token of tokenizer_config.json (defaults [UNK] [SEP] [PAD]
//                 [CLS] [MASK]), the ones in the vocabulary as added tokens.
// 'roberta-bpe' (RobertaConverter; RoBERTa):
//   vocab.json    token → id; merges.txt: one "a b" merge per line, in rank order, after an
//                 optional "#version" line;
//   model         BPE (no unk token, no prefixes/suffixes); pre-tokenizer and decoder ByteLevel
//                 with add_prefix_space of tokenizer_config.json (default false);
//   post-processor <s> $A </s> / <s> $A </s> </s>:1 $B:1 </s>:1 (RobertaProcessing's ids and type
//                 ids, as a template); special tokens bos/eos/sep/cls/unk/pad/mask_token (defaults
//                 <s> </s> </s> <s> <unk> <pad> <mask>; <mask> takes the space before it, lstrip).
// The file is written to a private temporary directory (beside a copy of tokenizer_config.json,
// which kdqat reads next to tokenizer.json), removed when the process exits; commands that write
// a model directory copy it there, so their outputs carry a tokenizer.json.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { modelFile, readModelText } from './model-files.js';
import { readTokenizerConfig } from './tokenizer_config.js';
import { isObj } from '../models/config-reader.js';
import { seq, special, specialToken, templateProcessing, vocabFromTokens, type TokenizerJson } from '../tokenize/schema.js';


/** tokenizer_config.json's token strings (a string or {content}) and flags, with defaults. */
function settings(config: Record<string, unknown> | null) {
  const cfg = config ?? {};
  return {
    token: (key: string, dflt: string): string => {
      const v = cfg[key];
      return typeof v === 'string' ? v : isObj(v) && typeof v.content === 'string' ? v.content : dflt;
    },
    flag: <D extends boolean | null>(key: string, dflt: D): boolean | D => {
      const v = cfg[key];
      return typeof v === 'boolean' ? v : dflt;
    },
  };
}

/** tokenizer.json of a vocab.txt (its text) and its tokenizer_config.json (parsed, or null). */
export function wordPieceFromVocab(vocabText: string, config: Record<string, unknown> | null, file: string): TokenizerJson {
  const lines = vocabText.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const tokens = lines.map((l) => l.replace(/\r$/, ''));
  if (tokens.length === 0) throw new Error(`${file}: is empty; a vocab.txt has one token per line`);
  const { token, flag } = settings(config);
  const vocab = vocabFromTokens(tokens);
  const unk = token('unk_token', '[UNK]'), cls = token('cls_token', '[CLS]'), sep = token('sep_token', '[SEP]');
  for (const [what, t] of [['unk_token', unk], ['cls_token', cls], ['sep_token', sep]] as const) {
    if (!(t in vocab)) {
      throw new Error(`${file}: has no line "${t}" (the ${what}${config && what in config ? ' of tokenizer_config.json' : ', by default'}); ` +
        'use the vocab.txt the model was trained with, or give the model its tokenizer.json');
    }
  }
  const specials = [...new Set([token('pad_token', '[PAD]'), unk, cls, sep, token('mask_token', '[MASK]')])]
    .filter((t) => t in vocab).sort((a, b) => vocab[a] - vocab[b]);
  const ids = new Map(specials.map((t) => [t, vocab[t]] as [string, number]));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((t) => specialToken(vocab[t], t)),
    normalizer: {
      type: 'BertNormalizer', clean_text: true, handle_chinese_chars: flag('tokenize_chinese_chars', true),
      strip_accents: flag('strip_accents', null), lowercase: flag('do_lower_case', true),
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: templateProcessing(
      [special(cls), seq('A'), special(sep)],
      [special(cls), seq('A'), special(sep), seq('B', 1), special(sep, 1)],
      ids,
    ),
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/** tokenizer.json of a vocab.json (its text), a merges.txt (its text) and tokenizer_config.json. */
export function robertaBpeFromFiles(vocabJson: string, mergesText: string, config: Record<string, unknown> | null, files: { vocab: string; merges: string }): TokenizerJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(vocabJson);
  } catch (e) {
    throw new Error(`${files.vocab}: not valid JSON (${(e as Error).message}); use the vocab.json the model was trained with`);
  }
  if (!isObj(parsed) || Object.values(parsed).some((id) => !Number.isInteger(id) || (id as number) < 0)) {
    throw new Error(`${files.vocab}: must be a JSON object of token → id (a non-negative integer); use the vocab.json the model was trained with`);
  }
  const vocab: Record<string, number> = Object.create(null);
  for (const [t, id] of Object.entries(parsed)) vocab[t] = id as number;
  const merges: string[] = [];
  mergesText.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim() || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || !(parts[0] in vocab) || !(parts[1] in vocab) || !(parts[0] + parts[1] in vocab)) {
      throw new Error(`${files.merges}:${i + 1}: ${JSON.stringify(line)} is not a merge of two tokens of ${path.basename(files.vocab)} into a third; ` +
        'use the merges.txt that goes with the vocab.json');
    }
    merges.push(line);
  });
  const { token, flag } = settings(config);
  const bos = token('bos_token', '<s>'), eos = token('eos_token', '</s>'), cls = token('cls_token', '<s>'), sep = token('sep_token', '</s>');
  for (const [what, t] of [['cls_token', cls], ['sep_token', sep]] as const) {
    if (!(t in vocab)) throw new Error(`${files.vocab}: has no token "${t}" (the ${what}); use the vocab.json the model was trained with, or give the model its tokenizer.json`);
  }
  const mask = token('mask_token', '<mask>');
  const specials = [...new Set([bos, token('pad_token', '<pad>'), eos, token('unk_token', '<unk>'), cls, sep, mask])]
    .filter((t) => t in vocab).sort((a, b) => vocab[a] - vocab[b]);
  const ids = new Map(specials.map((t) => [t, vocab[t]] as [string, number]));
  const addPrefixSpace = flag('add_prefix_space', false);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((t) => ({ ...specialToken(vocab[t], t), lstrip: t === mask })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: true },
    post_processor: templateProcessing(
      [special(cls), seq('A'), special(sep)],
      [special(cls), seq('A'), special(sep), special(sep, 1), seq('B', 1), special(sep, 1)],
      ids,
    ),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, vocab, merges,
    },
  };
}

let scratch: string | null = null;

/** What the slow tokenizer's files are for a family (the record's `legacyTokenizer`). */
export type LegacyTokenizer = 'bert-vocab' | 'roberta-bpe';

/** For a model directory without tokenizer.json: the path of a tokenizer.json built from the
 *  family's slow-tokenizer files (see the top) and how messages name it ("…/vocab.txt"), or null
 *  when the directory does not have them. */
export function tokenizerFromLegacyFiles(dir: string, kind: LegacyTokenizer): { path: string; from: string } | null {
  const need = kind === 'bert-vocab' ? ['vocab.txt'] : ['vocab.json', 'merges.txt'];
  const files = need.map((n) => modelFile(dir, n));
  if (files.some((f) => f === null)) return null;
  const cfgFile = modelFile(dir, 'tokenizer_config.json');
  const config = cfgFile ? readTokenizerConfig(dir) : null;
  const json = kind === 'bert-vocab'
    ? wordPieceFromVocab(readModelText(files[0]!), config, files[0]!)
    : robertaBpeFromFiles(readModelText(files[0]!), readModelText(files[1]!), config, { vocab: files[0]!, merges: files[1]! });
  if (scratch === null) {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-tokenizer-'));
    process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
    scratch = d;
  }
  const out = fs.mkdtempSync(path.join(scratch, 'model-'));
  fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(json));
  if (cfgFile) fs.copyFileSync(cfgFile, path.join(out, 'tokenizer_config.json'));
  return { path: path.join(out, 'tokenizer.json'), from: files.join(' + ') };
}
