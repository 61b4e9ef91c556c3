// A tokenizer.json for a WordPiece checkpoint (BERT, DistilBERT, RoFormer) that ships only
// vocab.txt and tokenizer_config.json, as many fine-tuned BERTs on the Hub do: built as
// transformers' BertConverter (convert_slow_tokenizer.py) builds BertTokenizerFast from
// BertTokenizer, so the ids are the ones transformers gives:
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
// The file is written to a private temporary directory (beside a copy of tokenizer_config.json,
// which kdqat reads next to tokenizer.json), removed when the process exits; commands that write
// a model directory copy it there, so their outputs carry a tokenizer.json.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { modelFile, readModelText } from './model-files.js';
import { seq, special, specialToken, templateProcessing, vocabFromTokens, type TokenizerJson } from '../tokenize/schema.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** tokenizer.json of a vocab.txt (its text) and its tokenizer_config.json (parsed, or null). */
export function wordPieceFromVocab(vocabText: string, config: Record<string, unknown> | null, file: string): TokenizerJson {
  const lines = vocabText.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const tokens = lines.map((l) => l.replace(/\r$/, ''));
  if (tokens.length === 0) throw new Error(`${file}: is empty; a vocab.txt has one token per line`);
  const cfg = config ?? {};
  const token = (key: string, dflt: string): string => {
    const v = cfg[key];
    return typeof v === 'string' ? v : isObj(v) && typeof v.content === 'string' ? v.content : dflt;
  };
  const flag = (key: string, dflt: boolean | null): boolean | null => {
    const v = cfg[key];
    return typeof v === 'boolean' ? v : dflt;
  };
  const vocab = vocabFromTokens(tokens);
  const unk = token('unk_token', '[UNK]'), cls = token('cls_token', '[CLS]'), sep = token('sep_token', '[SEP]');
  for (const [what, t] of [['unk_token', unk], ['cls_token', cls], ['sep_token', sep]] as const) {
    if (!(t in vocab)) {
      throw new Error(`${file}: has no line "${t}" (the ${what}${config ? ' of tokenizer_config.json' : ', by default'}); ` +
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

let scratch: string | null = null;

/** For a model directory without tokenizer.json but with vocab.txt: the path of a tokenizer.json
 *  built from it (see the top), or null when the directory has no vocab.txt. */
export function tokenizerFromVocabTxt(dir: string): string | null {
  const vocabFile = modelFile(dir, 'vocab.txt');
  if (!vocabFile) return null;
  const cfgFile = modelFile(dir, 'tokenizer_config.json');
  let config: Record<string, unknown> | null = null;
  if (cfgFile) {
    try {
      const j: unknown = JSON.parse(readModelText(cfgFile));
      if (isObj(j)) config = j;
    } catch (e) {
      throw new Error(`${cfgFile}: not valid JSON (${(e as Error).message}); fix it or remove it (vocab.txt is read with BERT's defaults then)`);
    }
    if (!config) throw new Error(`${cfgFile}: must be a JSON object; fix it or remove it`);
  }
  const json = wordPieceFromVocab(readModelText(vocabFile), config, vocabFile);
  if (scratch === null) {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-tokenizer-'));
    process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
    scratch = d;
  }
  const out = fs.mkdtempSync(path.join(scratch, 'model-'));
  fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(json));
  if (cfgFile) fs.copyFileSync(cfgFile, path.join(out, 'tokenizer_config.json'));
  return path.join(out, 'tokenizer.json');
}
