// A model's chat template (src/io/chat-template.ts) renders a conversation as transformers.js's
// apply_chat_template does from the same folder (tokenize: false), for templates in the styles
// of real checkpoints, wherever the template is stored; and KD-QAT's windows of a conversation
// corpus hold the rendered tokens with the template's own BOS, not a second one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { chatRendererOf } from '../../src/io/chat-template.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { decoderData } from '../../src/train/qat-data.js';
import { runQuantize } from '../../src/cli/quantize.js';
import { runExport } from '../../src/cli/export.js';
import { readGgufHeader, ggufGet } from '../../src/io/gguf.js';
import { makeFixture, type Fixture } from '../cli/fixture.js';

let fx: Fixture;
before(() => {
  fx = makeFixture('chat');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = fx.root;
});
after(() => fx?.cleanup());

// Templates in the styles of real checkpoints (control flow, bos_token, raise_exception, loop
// variables, string methods), not their full text.
const TEMPLATES: Record<string, string> = {
  // Qwen2.5 (ChatML), with its default system message.
  chatml: "{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
  // Llama 3: bos_token first, headers, content stripped.
  llama3: "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}" +
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
  // Mistral / Llama 2: [INST] with alternation enforced by raise_exception, eos after answers.
  mistral: "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}",
};
const CONVERSATION = [
  { role: 'user', content: 'What is the capital of France?' },
  { role: 'assistant', content: '  Paris. ' },
  { role: 'user', content: 'And of Italy?' },
  { role: 'assistant', content: 'Rome.' },
];

/** A copy of the fixture's LLaMA with this tokenizer_config.json (and extra files). */
function modelWith(name: string, cfg: Record<string, unknown>, files: Record<string, string> = {}): string {
  const dir = path.join(fx.root, name);
  fs.cpSync(fx.llama, dir, { recursive: true });
  const base = JSON.parse(fs.readFileSync(path.join(fx.llama, 'tokenizer_config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...base, bos_token: '<s>', eos_token: '</s>', ...cfg }));
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
  return dir;
}

async function transformersJs(name: string, messages: typeof CONVERSATION): Promise<string> {
  const tok = await AutoTokenizer.from_pretrained(name);
  return tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: false }) as string;
}

for (const [style, template] of Object.entries(TEMPLATES)) {
  test(`${style} template: kdqat renders a conversation as transformers.js does`, async () => {
    const dir = modelWith(`tpl-${style}`, { chat_template: template });
    const r = chatRendererOf(dir)!;
    assert.ok(r, 'a template was found');
    const want = await transformersJs(`tpl-${style}`, CONVERSATION);
    assert.equal(r.render(CONVERSATION), want);
    assert.ok(want.includes('Rome.'), want);
  });
}

test('where the template is stored: tokenizer_config.json (a string, or the "default" of a list), chat_template.jinja, chat_template.json; none: undefined', async () => {
  const listed = modelWith('tpl-list', { chat_template: [{ name: 'tool_use', template: 'TOOLS' }, { name: 'default', template: TEMPLATES.chatml }] });
  assert.equal(chatRendererOf(listed)!.render(CONVERSATION), await transformersJs('tpl-list', CONVERSATION));
  const jinja = modelWith('tpl-jinja', {}, { 'chat_template.jinja': TEMPLATES.llama3 });
  assert.equal(chatRendererOf(jinja)!.render(CONVERSATION), chatRendererOf(modelWith('tpl-llama3-again', { chat_template: TEMPLATES.llama3 }))!.render(CONVERSATION));
  assert.equal(chatRendererOf(jinja)!.source, path.join(jinja, 'chat_template.jinja'));
  const json = modelWith('tpl-json', {}, { 'chat_template.json': JSON.stringify({ chat_template: TEMPLATES.mistral }) });
  assert.match(chatRendererOf(json)!.render(CONVERSATION), /^<s>\[INST\] What is the capital of France\? \[\/INST\] {2}Paris\. <\/s>\[INST\]/);
  assert.equal(chatRendererOf(fx.llama), undefined);
  // Errors name the file: a template that does not parse (on first use), a list without a default,
  // a conversation the template refuses.
  const broken = chatRendererOf(modelWith('tpl-broken', { chat_template: '{% for m in messages %}{{ m.content }' }))!;
  assert.throws(() => broken.render(CONVERSATION), /tpl-broken\/tokenizer_config\.json: the chat template does not parse/);
  const nodefault = chatRendererOf(modelWith('tpl-nodefault', { chat_template: [{ name: 'rag', template: 'x' }] }))!;
  assert.throws(() => nodefault.render(CONVERSATION), /"chat_template" holds "rag" and no "default"/);
  const strict = chatRendererOf(modelWith('tpl-strict', { chat_template: TEMPLATES.mistral }))!;
  assert.throws(() => strict.render([{ role: 'assistant', content: 'x' }]), /Conversation roles must alternate/);
});

test('KD-QAT windows of a conversation corpus: the rendered tokens, with the template\'s BOS only', () => {
  const dir = modelWith('tpl-qat', { chat_template: TEMPLATES.llama3 });
  const tok = loadTokenizer(path.join(dir, 'tokenizer.json'));
  const bos = tok.specials.bos!, eos = tok.specials.eos!;
  const convs = Array.from({ length: 40 }, (_, i) => ({ messages: [{ role: 'user', content: `Question ${i} about the river?` }, { role: 'assistant', content: `Answer ${i}: the sea.` }] }));
  const file = fx.file('chat.jsonl', convs.map((c) => JSON.stringify(c)).join('\n') + '\n');
  const r = chatRendererOf(dir)!;
  const data = decoderData(file, tok, 16, r);
  // The training windows are the packed stream of the training split's conversations: each the
  // tokens of its rendered text (which starts with the template's <s>) and an EOS.
  const stream = Array.from(data.train.data.subarray(0, data.train.width));
  const texts = new Set(convs.map((c) => r.render(c.messages)));
  const first = [...texts].map((t) => tok.encode(t, { addSpecialTokens: false })).find((ids) => ids.every((x, i) => i >= stream.length || stream[i] === x));
  assert.ok(first, 'the first window starts with one rendered conversation');
  assert.equal(first![0], bos, 'the template writes the BOS');
  assert.notEqual(first![1], bos, 'and it is not doubled');
  // The token stream (windows share their boundary token).
  const { width, count } = data.train;
  const all = [...data.train.data.subarray(0, width)];
  for (let w = 1; w < count; w++) all.push(...data.train.data.subarray(w * width + 1, (w + 1) * width));
  for (let i = 1; i < all.length; i++) assert.ok(!(all[i] === bos && all[i - 1] === bos), `no BOS BOS at ${i}`);
  // One BOS (the template's) and one EOS per conversation; the dropped tail may cut one pair.
  const nBos = all.filter((x) => x === bos).length, nEos = all.filter((x) => x === eos).length;
  assert.ok(nBos > 0 && Math.abs(nBos - nEos) <= 1, `${nBos} BOS, ${nEos} EOS`);
  assert.ok(all.includes(eos), 'documents end with EOS');
  // Plain text keeps the packer's BOS.
  const plain = decoderData(fx.file('plain.jsonl', convs.map((c, i) => JSON.stringify({ text: `Line ${i} about the river and the sea.` })).join('\n') + '\n'), tok, 16, r);
  assert.equal(plain.train.data[0], bos);
});

test('models kdqat writes keep the source\'s chat_template.jinja and generation_config.json; exports carry the template', async () => {
  const gen = '{\n  "bos_token_id": 0,\n  "do_sample": true,\n  "eos_token_id": [1, 5],\n  "temperature": 0.6,\n  "top_p": 0.9\n}\n';
  const teacher = modelWith('tpl-carry', {}, { 'chat_template.jinja': TEMPLATES.llama3, 'generation_config.json': gen });
  const quiet = (): void => {};
  const student = path.join(fx.root, 'carry-student');
  await runQuantize({ model: teacher, quant: 'w4-g32', out: student }, quiet, quiet);
  assert.equal(fs.readFileSync(path.join(student, 'chat_template.jinja'), 'utf8'), TEMPLATES.llama3);
  assert.equal(fs.readFileSync(path.join(student, 'generation_config.json'), 'utf8'), gen, 'sampling defaults and stop ids kept byte for byte');
  // And from the student on: a safetensors export, a GGUF (tokenizer.chat_template), a transformers.js folder.
  const st = path.join(fx.root, 'carry-f32');
  await runExport({ model: student, format: 'safetensors', dtype: 'f32', out: st, latent: true });
  assert.equal(fs.readFileSync(path.join(st, 'generation_config.json'), 'utf8'), gen);
  assert.equal(fs.readFileSync(path.join(st, 'chat_template.jinja'), 'utf8'), TEMPLATES.llama3);
  const gguf = path.join(fx.root, 'carry.gguf');
  await runExport({ model: student, format: 'gguf', out: gguf, latent: true });
  assert.equal(ggufGet(readGgufHeader(gguf), 'tokenizer.chat_template'), TEMPLATES.llama3);
  const folder = path.join(fx.root, 'carry-onnx');
  await runExport({ model: student, format: 'onnx', out: folder });
  assert.equal(JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer_config.json'), 'utf8')).chat_template, TEMPLATES.llama3);
  // A model directory without them: generation_config.json is written from config.json, as before.
  const plain = path.join(fx.root, 'carry-plain');
  await runQuantize({ model: fx.llama, quant: 'w4-g32', out: plain }, quiet, quiet);
  assert.ok(!fs.existsSync(path.join(plain, 'chat_template.jinja')));
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(plain, 'generation_config.json'), 'utf8')).eos_token_id, 1);
  // A broken one is named, not copied.
  const broken = modelWith('tpl-badgen', {}, { 'generation_config.json': '{"eos_token_id": [1,' });
  await assert.rejects(runQuantize({ model: broken, quant: 'w4-g32', out: path.join(fx.root, 'x') }, quiet, quiet), /tpl-badgen\/generation_config\.json: not valid JSON .* fix or remove it/);
});
