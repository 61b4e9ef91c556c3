// The GGUF vocabulary is the tokenizer llama.cpp will run, exactly: for each tokenizer family
// (GPT-2, Llama-3, Qwen2, SmolLM2 byte-level BPE; Llama-2 SentencePiece-style BPE) a small
// vocabulary is trained with the family's real tokenizer.json settings (tokenizer-families.ts) on
// SOTU text, exported with a tiny random LLaMA, and llama.cpp (node-llama-cpp's CPU build) must
// give the same token ids as Hugging Face semantics (@huggingface/tokenizers, through kdqat's
// loadTokenizer) on a 2,000-character text with digits, whitespace runs, accents, CJK, emoji and
// code. Also: unknown pre-tokenizers are refused unless named, and tokenizer_config.json's
// add_bos_token / chat_template / special tokens reach the GGUF and a saved model directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { initParams } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { exportLlamaGguf, readGgufHeader, ggufGet } from '../../src/io/gguf.js';
import { loadModelDir, saveModelDir } from '../../src/io/model-dir.js';
import { runExport } from '../../src/cli/export.js';
import { loadTokenizer, sotuTexts, trainByteLevelBpe, trainSentencePieceBpe, type TokenizerJson } from '../../src/tokenize/index.js';
import { GPT2, LLAMA2, LLAMA3, QWEN2, SMOLLM, TEST_TEXT, type ByteLevelFamily } from './tokenizer-families.js';
import { tmpDir } from '../util.js';

const VOCAB = 1024;
let dir = '';
let llama: Llama;
let corpus: string[] = [];
before(async () => {
  dir = tmpDir('gguf-tok');
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  corpus = sotuTexts().slice(-12); // ~0.5 MB of recent addresses: enough for 1k merges
});
after(async () => {
  await llama?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

function tinyLlama(vocabSize: number): { cfg: LlamaConfig; params: ReturnType<typeof initParams> } {
  const cfg: LlamaConfig = {
    vocabSize, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1,
    rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 128, tieWordEmbeddings: true, initializerRange: 0.02,
  };
  return { cfg, params: initParams(llamaParamSpec(cfg), 3) };
}

function trainFamily(f: ByteLevelFamily): TokenizerJson {
  return trainByteLevelBpe(corpus, {
    vocabSize: VOCAB, specialTokens: f.specials, preTokenizer: f.preTokenizer, normalizer: f.normalizer,
    decoder: f.decoder, ignoreMerges: f.ignoreMerges, postProcessor: f.bos ? { bos: f.bos } : 'byte-level',
  });
}

function exportWith(name: string, json: object, extra: Partial<Parameters<typeof exportLlamaGguf>[1]> = {}): string {
  const m = tinyLlama(VOCAB);
  const file = path.join(dir, `${name}.gguf`);
  exportLlamaGguf(file, { config: m.cfg, params: m.params, tokenizerJson: json, force: true, ...extra });
  return file;
}

/** llama.cpp's ids for `text` (no BOS/EOS, special tokens not parsed) vs kdqat's (HF semantics). */
async function compareTokenization(name: string, json: TokenizerJson, gguf: string): Promise<void> {
  const tokFile = path.join(dir, `${name}.tokenizer.json`);
  fs.writeFileSync(tokFile, JSON.stringify(json));
  const ref = loadTokenizer(tokFile, { fast: false }).encode(TEST_TEXT, { addSpecialTokens: false });
  const ours = loadTokenizer(tokFile).encode(TEST_TEXT, { addSpecialTokens: false });
  assert.deepEqual(ours, ref, `${name}: kdqat's tokenizer differs from @huggingface/tokenizers`);
  const model = await llama.loadModel({ modelPath: gguf });
  try {
    const cpp = Array.from(model.tokenize(TEST_TEXT, false), Number);
    let i = 0;
    while (i < cpp.length && i < ref.length && cpp[i] === ref[i]) i++;
    assert.ok(i === cpp.length && i === ref.length,
      `${name}: llama.cpp and Hugging Face differ at token ${i} of ${ref.length}/${cpp.length}: ` +
      `HF ${JSON.stringify(ref.slice(i, i + 5).map((t) => json.model.vocab && Object.keys(json.model.vocab as object)[t]))} ` +
      `llama.cpp ${JSON.stringify(cpp.slice(i, i + 5))} vs HF ids ${JSON.stringify(ref.slice(i, i + 5))}`);
    assert.ok(ref.length > 500, `${name}: ${ref.length} tokens`);
  } finally {
    await model.dispose();
  }
}

for (const [label, fam] of [['GPT-2', GPT2], ['Llama-3', LLAMA3], ['Qwen2', QWEN2], ['SmolLM2', SMOLLM]] as const) {
  test(`${label} byte-level BPE: tokenizer.ggml.pre "${fam.pre}", llama.cpp ids ≡ Hugging Face on the test text`, async () => {
    const json = trainFamily(fam);
    const file = exportWith(label, json);
    const g = readGgufHeader(file);
    assert.equal(ggufGet(g, 'tokenizer.ggml.model'), 'gpt2');
    assert.equal(ggufGet(g, 'tokenizer.ggml.pre'), fam.pre);
    await compareTokenization(label, json, file);
  });
}

// The comparison has teeth: under a wrong tokenizer.ggml.pre llama.cpp's ids differ. (Not every
// wrong name shows up with a 1k vocabulary: Qwen2's or Llama-3's under "gpt-2", or SmolLM2's (no
// multi-digit tokens) under "gpt-2", give the same ids on this text, since the small vocabularies
// lack the tokens the splits disagree on.)
test('the test text tells digit splitting apart: Llama-3 and GPT-2 vocabularies under a wrong name tokenize differently in llama.cpp', async () => {
  for (const [fam, wrong] of [[LLAMA3, 'qwen2'], [GPT2, 'smollm']] as const) {
    const json = trainFamily(fam);
    const file = exportWith(`wrong-${fam.pre}`, json, { pre: wrong });
    await assert.rejects(compareTokenization(`${fam.pre} as ${wrong}`, json, file), /llama\.cpp and Hugging Face differ/, `${fam.pre} as ${wrong}`);
  }
});

test('Llama-2 SentencePiece-style BPE: "llama" vocabulary with scores and byte tokens, llama.cpp ids ≡ Hugging Face', async () => {
  const json = trainSentencePieceBpe(corpus, {
    vocabSize: VOCAB, specialTokens: LLAMA2.specials, normalizer: LLAMA2.normalizer, preTokenizer: LLAMA2.preTokenizer, decoder: LLAMA2.decoder,
  });
  const file = exportWith('llama2', json, { tokenizerConfig: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false } });
  const g = readGgufHeader(file);
  assert.equal(ggufGet(g, 'tokenizer.ggml.model'), 'llama');
  assert.equal(ggufGet(g, 'tokenizer.ggml.add_space_prefix'), true);
  const types = ggufGet(g, 'tokenizer.ggml.token_type') as number[];
  const tokens = ggufGet(g, 'tokenizer.ggml.tokens') as string[];
  assert.deepEqual(types.slice(0, 4), [2, 3, 3, 6]); // <unk> UNKNOWN, <s>/</s> CONTROL, <0x00> BYTE
  assert.equal(tokens[3 + 0x0a], '<0x0A>');
  assert.equal(ggufGet(g, 'tokenizer.ggml.unknown_token_id'), 0);
  assert.equal(ggufGet(g, 'tokenizer.ggml.bos_token_id'), 1);
  assert.equal(ggufGet(g, 'tokenizer.ggml.add_bos_token'), true);
  await compareTokenization('llama2', json, file);
});

test('SentencePiece-style export refuses merges llama.cpp cannot reproduce (incomplete merges)', () => {
  const json = trainSentencePieceBpe(corpus.slice(-2), { vocabSize: 600 });
  const model = json.model as { merges: string[] };
  model.merges = model.merges.filter((_, i) => i % 7 !== 3);
  assert.throws(() => exportWith('spm-bad', json), /tokenizer\.json: llama\.cpp's SentencePiece tokenizer.*not merges/);
});

test('an unknown pre-tokenizer is refused, naming tokenizer.json and --tokenizer-pre; a named one is used', () => {
  const json = trainByteLevelBpe(corpus.slice(-2), {
    vocabSize: 400, preTokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '\\w+|\\W+' }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
  });
  assert.throws(() => exportWith('unknown-pre', json), /tokenizer\.json: its pre_tokenizer .* matches none .*--tokenizer-pre NAME/);
  const file = exportWith('named-pre', json, { pre: 'gpt-2' });
  assert.equal(ggufGet(readGgufHeader(file), 'tokenizer.ggml.pre'), 'gpt-2');
  assert.throws(() => exportWith('bogus-pre', json, { pre: 'gpt-3' }), /--tokenizer-pre "gpt-3" is not a pre-tokenizer llama\.cpp knows/);
  // Llama-3's regex without Llama-3's ignore_merges would tokenize differently in llama.cpp.
  const l3 = trainFamily(LLAMA3);
  (l3.model as { ignore_merges: boolean }).ignore_merges = false;
  assert.throws(() => exportWith('l3-merges', l3), /"llama-bpe", but model\.ignore_merges is false/);
});

test('kdqat export: tokenizer_config.json (add_bos_token, chat_template, special tokens) reaches the GGUF and the re-saved model dir; --tokenizer-pre', async () => {
  const json = trainFamily(LLAMA3);
  const m = tinyLlama(VOCAB);
  const src = path.join(dir, 'l3-model');
  const chat = "{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<|end|>{% endfor %}";
  const userCfg = {
    bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', add_bos_token: true, add_eos_token: false,
    chat_template: chat, padding_side: 'left', model_max_length: 131072, custom_field: { kept: [1, 2, 3] },
  };
  saveModelDir(src, {
    config: { arch: 'llama', config: m.cfg, meta: { bosTokenId: 0, eosTokenId: 1 } }, params: m.params,
    tokenizerJson: json, tokenizerConfig: userCfg, force: true,
  });
  const written = JSON.parse(fs.readFileSync(path.join(src, 'tokenizer_config.json'), 'utf8'));
  for (const [k, v] of Object.entries(userCfg)) assert.deepEqual(written[k], v, `tokenizer_config.json keeps ${k}`);
  assert.ok(written.added_tokens_decoder['0'], 'generated fields fill in the rest');

  const out = await runExport({ model: src, format: 'gguf', out: path.join(dir, 'l3.gguf'), force: true });
  const g = readGgufHeader(out);
  assert.equal(ggufGet(g, 'tokenizer.ggml.pre'), 'llama-bpe');
  assert.equal(ggufGet(g, 'tokenizer.ggml.add_bos_token'), true);
  assert.equal(ggufGet(g, 'tokenizer.ggml.add_eos_token'), false);
  assert.equal(ggufGet(g, 'tokenizer.chat_template'), chat);
  assert.equal(ggufGet(g, 'tokenizer.ggml.bos_token_id'), 0);
  assert.equal(ggufGet(g, 'tokenizer.ggml.eos_token_id'), 1);
  const model = await llama.loadModel({ modelPath: out });
  try {
    assert.equal(model.tokens.shouldPrependBosToken, true);
    assert.deepEqual(Array.from(model.tokenize('<|begin_of_text|>hi', true)).slice(0, 1), [0]);
  } finally {
    await model.dispose();
  }

  // A safetensors re-save keeps the user's tokenizer_config.json fields.
  const resaved = await runExport({ model: src, format: 'safetensors', out: path.join(dir, 'l3-f16'), force: true });
  const again = JSON.parse(fs.readFileSync(path.join(resaved, 'tokenizer_config.json'), 'utf8'));
  for (const [k, v] of Object.entries(userCfg)) assert.deepEqual(again[k], v, `re-saved tokenizer_config.json keeps ${k}`);
  assert.ok(loadModelDir(resaved).tokenizerPath);

  // --tokenizer-pre overrides the detected name, and is validated before loading.
  const named = await runExport({ model: src, format: 'gguf', out: path.join(dir, 'l3-named.gguf'), tokenizerPre: 'dbrx', force: true });
  assert.equal(ggufGet(readGgufHeader(named), 'tokenizer.ggml.pre'), 'dbrx');
  await assert.rejects(runExport({ model: src, format: 'gguf', out: path.join(dir, 'x.gguf'), tokenizerPre: 'nope' }), /--tokenizer-pre "nope" is not a pre-tokenizer llama\.cpp knows; .*llama-bpe/);
});
