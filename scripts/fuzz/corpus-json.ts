// Fuzz cases over the JSON files of a model directory: config.json (every key the readers use:
// missing, wrong type, out of range, inconsistent with the weights), tokenizer.json,
// tokenizer_config.json, and a student's quantization.json and model.quantized.safetensors
// (codes outside their bit range, non-finite scales, metadata).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../../src/tensor/rng.js';
import { stBuild, stParse, stRemove, stAppend, type Base, type StEntry } from './base.js';
import { COMMANDS, M, copyDir, dataFor, type FuzzCase, type Kind } from './case.js';

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
type J = Record<string, unknown>;
const DIRS: Record<Kind, keyof Base> = { llama: 'llama', bert: 'bert', student: 'student' };

/** A case whose model directory has `file` replaced by edit(parsed base file) (text as is). */
export function fileCase(category: string, what: string, kind: Kind, cmd: string, file: string, field: string | string[],
  edit: (m: string) => void, n: number, from: keyof Base = DIRS[kind]): FuzzCase {
  return {
    id: `${category}/${what}/${from === DIRS[kind] ? kind : from}-${cmd}#${n}`, category, expect: 'error', file: path.basename(file),
    field: ([] as string[]).concat(field).join('\u0000'),
    setup(ws, base) {
      copyDir(base[from] as string, M(ws));
      dataFor(ws, base);
      edit(M(ws));
    },
    run: { argv: COMMANDS[kind][cmd] },
  };
}

const editJson = (file: string, f: (j: J) => unknown) => (m: string): void => {
  const p = path.join(m, file);
  const v = f(JSON.parse(fs.readFileSync(p, 'utf8')));
  fs.writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v, null, 2));
};
const set = (k: string, v: unknown) => (j: J): J => ({ ...j, [k]: v });
const del = (k: string) => (j: J): J => { const o = { ...j }; delete o[k]; return o; };

/** Whole-file damage any JSON file can have: [what, text or bytes]. */
const WHOLE_FILE: [string, string | Buffer][] = [
  ['empty', ''], ['whitespace', ' \n\t\n'], ['truncated', '{"vocab_size": 3'], ['array', '[1, 2, 3]'], ['null', 'null'],
  ['string', '"config"'], ['number', '42'], ['trailing-comma', '{"a": 1,}'], ['single-quotes', "{'a': 1}"],
  ['binary', Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x00, 0x01, 0x80])], ['bad-utf8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])],
  ['nul-inside', '{"a"\u0000: 1}'], ['deep-nesting', '['.repeat(20000) + ']'.repeat(20000)],
];

function wholeFileCases(category: string, file: string, kinds: [Kind, string, (keyof Base)?][], rng: Rng, out: FuzzCase[]): void {
  WHOLE_FILE.forEach(([what, content], n) => {
    const [kind, cmd, from] = pick(rng, kinds);
    out.push(fileCase(category, what, kind, cmd, file, [], (m) => fs.writeFileSync(path.join(m, file), content), n, from));
  });
  const [kind, cmd, from] = pick(rng, kinds);
  out.push(fileCase(category, 'is-a-directory', kind, cmd, file, [], (m) => {
    fs.rmSync(path.join(m, file));
    fs.mkdirSync(path.join(m, file));
  }, 0, from));
}

// ---- config.json ----------------------------------------------------------------------------------

/** [key, bad values] of a LLaMA config.json: each value is wrong by type, range, or by
 *  disagreeing with the weights (the base model: vocab 320, hidden 32, 4 heads, 2 KV heads,
 *  intermediate 64, 2 layers, bos 0, eos 1). */
const LLAMA_BAD: [string, unknown[]][] = [
  ['vocab_size', [undefined, '320', 320.5, 0, -1, true, null, [320], 321, 319, 1e6]],
  ['hidden_size', [undefined, '32', 32.5, 0, -32, false, 64, 16, 30]],
  ['intermediate_size', [undefined, '64', 0, -1, 65, 128, 1e400]],
  ['num_hidden_layers', [undefined, '2', 0, -2, 1, 3, 2.5]],
  ['num_attention_heads', [undefined, '4', 0, 3, 5, 8, -4]],
  ['num_key_value_heads', ['2', 0, 3, 4, 1, -2, 2.5]],
  ['rms_norm_eps', ['1e-5', -1, true, 1e400, [1e-5]]],
  ['rope_theta', ['10000', 0, -1, 1e400, {}]],
  ['max_position_embeddings', [0, '64', -5, 64.5]],
  ['tie_word_embeddings', ['true', 1, true]],
  ['hidden_act', ['gelu', 5, 'relu', '']],
  ['model_type', [undefined, 'gpt2', 7, 'LLAMA', '']],
  ['architectures', ['LlamaForCausalLM', ['GPT2LMHeadModel'], [1], {}]],
  ['bos_token_id', [320, 1000, -1, '0', 0.5, [0]]],
  ['eos_token_id', [320, 99999, -1, '1', 1.5, [1, 320], [-1], ['1']]],
  ['pad_token_id', [320, 2 ** 31, -3, 'pad']],
  ['head_dim', [7, 16, '8', 0, -8]],
  ['rope_scaling', ['linear', { type: 'dynamic', factor: 2 }, { rope_type: 'linear' }, { rope_type: 'linear', factor: -1 },
    { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 32 }, { rope_type: 'yarn', factor: 'x' }]],
  ['attention_bias', [true, 'no']],
  ['mlp_bias', [true]],
  ['pretraining_tp', [2]],
  ['partial_rotary_factor', [0.5]],
  ['rope_parameters', [{ rope_type: 'default', rope_theta: 10000 }]],
  ['initializer_range', ['x', -1]],
  ['torch_dtype', [5, ['float32']]],
];

const BERT_BAD: [string, unknown[]][] = [
  ['vocab_size', [undefined, '120', 0, 121, 119, -1]],
  ['hidden_size', [undefined, 64, '32', 0]],
  ['num_hidden_layers', [undefined, 2, 0, '1']],
  ['num_attention_heads', [undefined, 3, 0, 'four']],
  ['intermediate_size', [undefined, 63, '64', 0]],
  ['max_position_embeddings', [32, 128, 0, '64']],
  ['type_vocab_size', [3, 1, 0, '2']],
  ['layer_norm_eps', ['x', -1, 1e400]],
  ['hidden_act', ['swish', 3, 'silu ']],
  ['position_embedding_type', ['rotary', 5]],
  ['id2label', [{ 0: 'neg' }, { 0: 'neg', 1: 'pos', 2: 'neutral' }, [1, 2], 'labels', { a: 'neg', b: 'pos' }]],
  ['label2id', [{ neg: 0, pos: 5 }, { neg: 'zero', pos: 1 }, 3]],
  ['num_labels', [3, 1, '2']],
  ['pad_token_id', [120, -1, 'x', 500]],
  ['architectures', [['GPT2LMHeadModel'], 'BertForSequenceClassification', [7]]],
  ['model_type', [undefined, 'bort', 5]],
  ['classifier_dropout', ['x', -0.5]],
  ['problem_type', ['regression', 5, 'multi_label_classification']],
];

export function configCases(rng: Rng, out: FuzzCase[]): void {
  const add = (kind: Kind, table: [string, unknown[]][]): void => {
    for (const [key, values] of table) {
      values.forEach((v, n) => {
        const cmd = pick(rng, Object.keys(COMMANDS[kind]));
        // `1e400` is not a JS number; config.json spells it as JSON text (it parses to Infinity).
        const edit = v === 1e400
          ? editJson('config.json', (j) => JSON.stringify({ ...j, [key]: '@INF@' }).replace('"@INF@"', '1e400'))
          : editJson('config.json', v === undefined ? del(key) : set(key, v));
        // A value the model cannot match shows up as a shape mismatch naming the tensor; the key
        // must still be named where it is the key's own check (checked by the runner: the
        // message names config.json and one of the fields).
        out.push(fileCase('config', `${key}=${v === undefined ? 'missing' : JSON.stringify(v) ?? String(v)}`, kind, cmd, 'config.json', key, edit, n));
      });
    }
  };
  add('llama', LLAMA_BAD);
  add('bert', BERT_BAD);
  // The same keys through a student directory (its config.json is the latent model's).
  for (const [key, values] of LLAMA_BAD.slice(0, 6)) {
    const v = pick(rng, values);
    out.push(fileCase('config', `${key}=${JSON.stringify(v) ?? 'missing'}`, 'student', pick(rng, Object.keys(COMMANDS.student)), 'config.json', key,
      editJson('config.json', v === undefined ? del(key) : set(key, v)), 0));
  }
  // The other decoder families' own keys: the LLaMA weights under the family's model_type (its
  // keys are read before the weights, so each bad value is refused by name).
  const FAMILY_BAD: [string, string, string, unknown[]][] = [
    ['mistral', 'MistralForCausalLM', 'sliding_window', ['4096', -1, 0, 1.5, true]],
    ['mistral', 'MistralForCausalLM', 'rope_scaling', [{ rope_type: 'linear', factor: 2 }]],
    ['qwen2', 'Qwen2ForCausalLM', 'use_sliding_window', [true, 'no', 1]],
    ['qwen2', 'Qwen2ForCausalLM', 'use_mrope', [true]],
    ['qwen2', 'Qwen2ForCausalLM', 'head_dim', [16, 'x']],
    ['phi3', 'Phi3ForCausalLM', 'head_dim', [16]],
    ['phi3', 'Phi3ForCausalLM', 'attention_bias', [true, 'yes']],
    ['phi3', 'Phi3ForCausalLM', 'rope_scaling', [
      { type: 'longrope', long_factor: 'x', short_factor: [1] }, { type: 'su', long_factor: [1, null], short_factor: [1, 1] },
      { type: 'longrope' }, { type: 'yarn', factor: 2 }, { type: 'longrope', long_factor: [], short_factor: [], factor: 1e9 },
    ]],
    ['phi3', 'Phi3ForCausalLM', 'original_max_position_embeddings', [0, 'x', -4096]],
    ['phi3', 'Phi3ForCausalLM', 'partial_rotary_factor', [0, 1.5, 'x', -0.5]],
    ['qwen3', 'Qwen3ForCausalLM', 'attention_bias', [true]],
    ['smollm3', 'SmolLM3ForCausalLM', 'no_rope_layers', [[1], 'x', [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], [true]]],
    ['smollm3', 'SmolLM3ForCausalLM', 'no_rope_layer_interval', [0, 'x']],
    ['smollm3', 'SmolLM3ForCausalLM', 'use_sliding_window', [true]],
  ];
  for (const [family, cls, key, values] of FAMILY_BAD) {
    values.forEach((v, n) => {
      out.push(fileCase('config', `${family}.${key}=${JSON.stringify(v)}`, 'llama', pick(rng, ['eval', 'quantize', 'export-gguf']), 'config.json', key,
        editJson('config.json', (j) => ({ ...j, model_type: family, architectures: [cls], [key]: v })), n));
    });
  }
  wholeFileCases('config', 'config.json', [['llama', 'eval'], ['llama', 'qat'], ['bert', 'finetune'], ['student', 'eval'], ['llama', 'export-gguf']], rng, out);
  const [kind, cmd] = pick(rng, [['llama', 'eval'], ['bert', 'finetune'], ['llama', 'quantize']] as [Kind, string][]);
  out.push(fileCase('config', 'missing-file', kind, cmd, 'config.json', 'config.json', (m) => fs.rmSync(path.join(m, 'config.json')), 0));
}

// ---- tokenizer.json / tokenizer_config.json -------------------------------------------------------

type TokEdit = [string, (j: J, rng: Rng) => unknown, string];
const model = (j: J): J => j.model as J;
const TOKENIZER_EDITS: TokEdit[] = [
  ['model-missing', (j) => del('model')(j), 'model'],
  ['model-not-object', (j) => set('model', 'BPE')(j), 'model'],
  ['model-type-unknown', (j) => ({ ...j, model: { ...model(j), type: 'Foo' } }), 'type'],
  ['vocab-array', (j) => ({ ...j, model: { ...model(j), vocab: [] } }), 'vocab'],
  ['vocab-id-too-big', (j, rng) => ({ ...j, model: { ...model(j), vocab: { ...(model(j).vocab as J), zzz: 1000 + rng.int(1e6) } } }), 'vocab_size'],
  ['vocab-id-negative', (j) => ({ ...j, model: { ...model(j), vocab: { ...(model(j).vocab as J), zzz: -5 } } }), 'vocab'],
  ['vocab-id-string', (j) => ({ ...j, model: { ...model(j), vocab: { ...(model(j).vocab as J), zzz: '7' } } }), 'vocab'],
  ['vocab-id-float', (j) => ({ ...j, model: { ...model(j), vocab: { ...(model(j).vocab as J), zzz: 7.5 } } }), 'vocab'],
  ['merges-not-array', (j) => ({ ...j, model: { ...model(j), merges: 5 } }), 'merges'],
  ['merges-bad-entry', (j) => ({ ...j, model: { ...model(j), merges: [['a'], 7] } }), 'merges'],
  ['merges-unknown-token', (j) => ({ ...j, model: { ...model(j), merges: ['qqqq zzzz', ...(model(j).merges as unknown[] ?? [])] } }), 'merges'],
  ['added-id-too-big', (j, rng) => ({ ...j, added_tokens: [...(j.added_tokens as unknown[]), { id: 400 + rng.int(1e5), content: '<extra>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }] }), 'vocab_size'],
  ['added-not-array', (j) => set('added_tokens', { a: 1 })(j), 'added_tokens'],
  ['added-bad-entry', (j) => set('added_tokens', [{ content: 5 }])(j), 'added_tokens'],
  ['pre-tokenizer-unknown', (j) => set('pre_tokenizer', { type: 'Martian' })(j), 'pre_tokenizer'],
  ['normalizer-unknown', (j) => set('normalizer', { type: 'Upside' })(j), 'normalizer'],
  ['decoder-unknown', (j) => set('decoder', { type: 'Reverse' })(j), 'decoder'],
  ['post-processor-unknown', (j) => set('post_processor', { type: 'Whatever' })(j), 'post_processor'],
];

export function tokenizerCases(rng: Rng, out: FuzzCase[]): void {
  const kinds: [Kind, string][] = [['llama', 'eval'], ['llama', 'qat'], ['llama', 'quantize'], ['llama', 'export-gguf'], ['bert', 'eval'], ['bert', 'finetune'], ['bert', 'qat'], ['student', 'eval']];
  for (const [what, f, field] of TOKENIZER_EDITS) {
    for (let n = 0; n < 3; n++) {
      // merges belong to BPE (the LLaMA's tokenizer); a WordPiece model has none.
      const [kind, cmd] = pick(rng, what.startsWith('merges') ? kinds.filter(([k]) => k !== 'bert') : kinds);
      const seed = rng.nextU32();
      out.push(fileCase('tokenizer', what, kind, cmd, 'tokenizer.json', field, editJson('tokenizer.json', (j) => f(j, new Rng(seed))), n));
    }
  }
  wholeFileCases('tokenizer', 'tokenizer.json', kinds, rng, out);
}

const TOKCFG_EDITS: [string, unknown, string][] = [
  ['chat-template-number', { chat_template: 5 }, 'chat_template'],
  ['chat-template-bad-list', { chat_template: [{ name: 1, template: 'x' }] }, 'chat_template'],
  ['chat-template-object', { chat_template: { default: 'x' } }, 'chat_template'],
  ['add-bos-string', { add_bos_token: 'yes' }, 'add_bos_token'],
  ['add-eos-number', { add_eos_token: 1 }, 'add_eos_token'],
  ['bos-token-number', { bos_token: 5 }, 'bos_token'],
  ['sep-token-list', { sep_token: ['[SEP]'] }, 'sep_token'],
  ['add-sep-null-string', { add_sep_token: 'null' }, 'add_sep_token'],
];

export function tokenizerConfigCases(rng: Rng, out: FuzzCase[]): void {
  const kinds: [Kind, string][] = [['llama', 'quantize'], ['llama', 'export-gguf'], ['llama', 'export-st'], ['student', 'export-gguf'], ['llama', 'qat']];
  for (const [what, patch, field] of TOKCFG_EDITS) {
    for (let n = 0; n < 3; n++) {
      const [kind, cmd] = pick(rng, kinds);
      out.push(fileCase('tokenizer_config', what, kind, cmd, 'tokenizer_config.json', field, editJson('tokenizer_config.json', (j) => ({ ...j, ...(patch as J) })), n));
    }
  }
  wholeFileCases('tokenizer_config', 'tokenizer_config.json', kinds, rng, out);
}

// ---- a student's quantization.json and model.quantized.safetensors --------------------------------

const QJ = 'quantization.json';
const QW = 'model.quantized.safetensors';

const firstWeight = (j: J): string => Object.keys(j.weights as J)[0];
const QJSON_EDITS: [string, (j: J) => unknown, string][] = [
  ['format-missing', (j) => del('format')(j), 'format'],
  ['format-wrong', (j) => set('format', 'gptq')(j), 'format'],
  ['version-2', (j) => set('version', 2)(j), 'version'],
  ['version-string', (j) => set('version', '1')(j), 'version'],
  ['config-missing', (j) => del('config')(j), 'config'],
  ['config-bits-9', (j) => set('config', { weights: { rule: { kind: 'sym', bits: 9 }, granule: 'channel' } })(j), 'bits'],
  ['weights-missing', (j) => del('weights')(j), 'weights'],
  ['weights-array', (j) => set('weights', [])(j), 'weights'],
  ['weight-param-missing', (j) => { const w = { ...(j.weights as J) }; const k = firstWeight(j); w[k] = { ...(w[k] as J), param: undefined }; return { ...j, weights: w }; }, 'param'],
  ['weight-param-unknown', (j) => { const w = { ...(j.weights as J) }; const k = firstWeight(j); w[k] = { ...(w[k] as J), param: 'model.nothing.weight' }; return { ...j, weights: w }; }, 'model.nothing.weight'],
  ['weight-shape-1d', (j) => { const w = { ...(j.weights as J) }; const k = firstWeight(j); w[k] = { ...(w[k] as J), shape: [32] }; return { ...j, weights: w }; }, 'shape'],
  ['weight-shape-wrong', (j) => { const w = { ...(j.weights as J) }; const k = firstWeight(j); w[k] = { ...(w[k] as J), shape: [33, 32] }; return { ...j, weights: w }; }, 'shape'],
  ['weight-shape-strings', (j) => { const w = { ...(j.weights as J) }; const k = firstWeight(j); w[k] = { ...(w[k] as J), shape: ['a', 'b'] }; return { ...j, weights: w }; }, 'shape'],
  ['weight-bits-9', (j) => { const w = { ...(j.weights as J) }; const k = firstWeight(j); w[k] = { ...(w[k] as J), quant: { rule: { kind: 'sym', bits: 9 }, granule: { kind: 'channel' } } }; return { ...j, weights: w }; }, 'bits'],
  ['weight-rule-unknown', (j) => { const w = { ...(j.weights as J) }; const k = firstWeight(j); w[k] = { ...(w[k] as J), quant: { rule: { kind: 'gptq' }, granule: 'channel' } }; return { ...j, weights: w }; }, 'rule'],
  ['weight-granule-changed', (j) => { const w = { ...(j.weights as J) }; const k = firstWeight(j); w[k] = { ...(w[k] as J), quant: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 16 } } }; return { ...j, weights: w }; }, 'scales'],
  ['weight-removed', (j) => { const w = { ...(j.weights as J) }; delete w[firstWeight(j)]; return { ...j, weights: w }; }, 'codes'],
  ['weight-entry-string', (j) => { const w = { ...(j.weights as J) }; w[firstWeight(j)] = 'q'; return { ...j, weights: w }; }, 'weights'],
];

/** Codes outside their bit range, non-finite scales, broken metadata of model.quantized.safetensors. */
type QwMut = (f: Buffer, rng: Rng) => { bytes: Buffer; field: string[] } | null;
const names = (st: ReturnType<typeof stParse>, suffix: string): string[] => Object.keys(st.header).filter((k) => k.endsWith(suffix));
const QW_MUTATIONS: Record<string, QwMut> = {
  'code-out-of-range': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, names(st, '.codes'));
    const e = st.header[name] as StEntry;
    const n = e.data_offsets[1] - e.data_offsets[0];
    const i = rng.int(n);
    const data = Buffer.from(st.data);
    // sym 4-bit: [-8, 7] as I8; asym 4-bit: [0, 15] as U8.
    if (e.dtype === 'I8') data.writeInt8(pick(rng, [8, 9, 100, 127, -9, -100, -128]), e.data_offsets[0] + i);
    else data.writeUInt8(pick(rng, [16, 17, 128, 255]), e.data_offsets[0] + i);
    return { bytes: stBuild({ header: st.header, data }), field: [name, String(i)] };
  },
  'zero-point-out-of-range': (f, rng) => {
    const st = stParse(f);
    const zs = names(st, '.zeros');
    if (!zs.length) return null;
    const name = pick(rng, zs);
    const e = st.header[name] as StEntry;
    const i = rng.int((e.data_offsets[1] - e.data_offsets[0]) / 4);
    const data = Buffer.from(st.data);
    data.writeInt32LE(pick(rng, [16, -1, 1 << 20, -(1 << 30)]), e.data_offsets[0] + 4 * i);
    return { bytes: stBuild({ header: st.header, data }), field: [name, String(i)] };
  },
  'scale-nonfinite': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, names(st, '.scales'));
    const e = st.header[name] as StEntry;
    const i = rng.int((e.data_offsets[1] - e.data_offsets[0]) / 4);
    const data = Buffer.from(st.data);
    data.writeFloatLE(pick(rng, [NaN, Infinity, -Infinity]), e.data_offsets[0] + 4 * i);
    return { bytes: stBuild({ header: st.header, data }), field: [name, String(i)] };
  },
  'codes-dtype': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, names(st, '.codes'));
    const e = st.header[name] as StEntry;
    return { bytes: stBuild({ header: { ...st.header, [name]: { ...e, dtype: pick(rng, ['BOOL', 'F8_E4M3']) } }, data: st.data }), field: [name, 'dtype'] };
  },
  'scales-missing': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, names(st, '.scales'));
    return { bytes: stBuild(stRemove(st, name)), field: [name] };
  },
  'tensor-extra': (f) => {
    const st = stParse(f);
    return { bytes: stBuild(stAppend(st, 'model.layers.0.self_attn.q_proj.weight.extra', 'F32', [2], Buffer.alloc(8))), field: ['model.layers.0.self_attn.q_proj.weight.extra'] };
  },
  'metadata-format': (f, rng) => {
    const st = stParse(f);
    const meta = { ...(st.header.__metadata__ as J), format: pick(rng, ['pt', 'kdqat', '']) };
    return { bytes: stBuild({ header: { ...st.header, __metadata__: meta }, data: st.data }), field: ['format'] };
  },
  'metadata-activations': (f, rng) => {
    const st = stParse(f);
    const meta = { ...(st.header.__metadata__ as J), activations: pick(rng, ['{bits: 8', 'nope', '[']) };
    return { bytes: stBuild({ header: { ...st.header, __metadata__: meta }, data: st.data }), field: ['activations'] };
  },
};

export function studentCases(rng: Rng, base: Base, out: FuzzCase[]): void {
  const cmds = Object.keys(COMMANDS.student);
  for (const [what, f, field] of QJSON_EDITS) {
    for (let n = 0; n < 2; n++) {
      const from = pick(rng, ['student', 'studentAsym'] as const);
      out.push(fileCase('student', what, 'student', pick(rng, cmds), QJ, field, editJson(QJ, f), n, from));
    }
  }
  for (const [what, mut] of Object.entries(QW_MUTATIONS)) {
    for (let n = 0; n < 6; n++) {
      const from = pick(rng, ['student', 'studentAsym'] as const);
      const seed = rng.nextU32();
      const src = path.join(base[from], QW);
      const r = mut(fs.readFileSync(src), new Rng(seed));
      if (!r) continue;
      out.push(fileCase('student', what, 'student', pick(rng, cmds), QW, r.field,
        (m) => fs.writeFileSync(path.join(m, QW), mut(fs.readFileSync(src), new Rng(seed))!.bytes), n, from));
    }
  }
  wholeFileCases('student', QJ, [['student', 'eval'], ['student', 'quantize'], ['student', 'export-gguf']], rng, out);
  out.push(fileCase('student', 'weights-file-missing', 'student', 'eval', QW, QW, (m) => fs.rmSync(path.join(m, QW)), 0));
}
