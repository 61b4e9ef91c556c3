// Conversations in JSON Lines corpora (src/data/chat.ts): each layout's lines become the texts a
// renderer makes of their messages (or plain text, for TRL's string prompt-completion), and every
// bad line is named with its fix.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readJsonlTexts, loadTextCorpus } from '../../src/data/text.js';
import type { ChatMessage, ChatRenderer } from '../../src/data/chat.js';
import { assertFileErrors, tmpFile, cleanup } from './helpers.js';

after(cleanup);

/** A ChatML-like renderer that shows exactly which messages it was given. */
const chatml: ChatRenderer = {
  source: 'test',
  render: (ms: ChatMessage[]) => ms.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join(''),
};
const lines = (...o: unknown[]): string => o.map((x) => JSON.stringify(x)).join('\n') + '\n';

test('messages, ShareGPT conversations and conversational prompt-completion are rendered; string prompt-completion is plain text', () => {
  const messages = tmpFile('m.jsonl', lines(
    { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }] },
    { messages: [{ role: 'user', content: 'Two?' }, { role: 'assistant', content: 'Yes.' }], source: 'x' },
  ));
  assert.deepEqual(readJsonlTexts(messages, chatml), [
    { text: '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n', rendered: true },
    { text: '<|im_start|>user\nTwo?<|im_end|>\n<|im_start|>assistant\nYes.<|im_end|>\n', rendered: true },
  ]);
  const sharegpt = tmpFile('s.jsonl', lines({ conversations: [{ from: 'system', value: 'S' }, { from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }] }));
  assert.deepEqual(readJsonlTexts(sharegpt, chatml), [
    { text: '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n', rendered: true },
  ]);
  const pc = tmpFile('pc.jsonl', lines(
    { prompt: 'The capital of France is', completion: ' Paris.' },
    { prompt: [{ role: 'user', content: 'Capital of France?' }], completion: [{ role: 'assistant', content: 'Paris.' }] },
  ));
  assert.deepEqual(readJsonlTexts(pc, chatml), [
    { text: 'The capital of France is Paris.', rendered: false },
    { text: '<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n', rendered: true },
  ]);
  // Content as a list of text parts (the OpenAI / multimodal layout): joined with newlines.
  const parts = tmpFile('parts.jsonl', lines(
    { messages: [{ role: 'user', content: [{ type: 'text', text: 'Look:' }, { type: 'text', text: 'two parts' }] }, { role: 'assistant', content: 'Seen.' }] },
  ));
  assert.deepEqual(readJsonlTexts(parts, chatml), [
    { text: '<|im_start|>user\nLook:\ntwo parts<|im_end|>\n<|im_start|>assistant\nSeen.<|im_end|>\n', rendered: true },
  ]);
  // Alpaca's layout (a JSON array, as alpaca_data.json ships): the instruction, the input after a
  // blank line when there is one, as the user's turn; the output as the assistant's.
  const alpaca = tmpFile('alpaca.json', JSON.stringify([
    { instruction: 'Name a river.', input: '', output: 'The Nile.' },
    { instruction: 'Translate.', input: 'Bonjour', output: 'Hello' },
  ], null, 2) + '\n');
  assert.deepEqual(readJsonlTexts(alpaca, chatml), [
    { text: '<|im_start|>user\nName a river.<|im_end|>\n<|im_start|>assistant\nThe Nile.<|im_end|>\n', rendered: true },
    { text: '<|im_start|>user\nTranslate.\n\nBonjour<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n', rendered: true },
  ]);
  // Plain text needs no template; "content" is read where there is no "text".
  assert.deepEqual(readJsonlTexts(tmpFile('pcs.jsonl', lines({ prompt: 'a', completion: 'b' })), undefined), [{ text: 'ab', rendered: false }]);
  assert.deepEqual(readJsonlTexts(tmpFile('c.jsonl', lines({ content: 'def f(): pass' }, { content: '  ' })), undefined), [{ text: 'def f(): pass', rendered: false }]);
  // A corpus marks its rendered documents, which a packer must not give a second BOS.
  const corpus = loadTextCorpus(messages, { chat: chatml });
  assert.deepEqual(corpus.documents.map((d) => d.meta.rendered), [1, 1]);
  assert.deepEqual(loadTextCorpus(pc, { chat: chatml }).documents.map((d) => d.meta.rendered ?? 0), [0, 1]);
});

test('bad conversation lines: the file, the line, the field and the fix', () => {
  const ok = { messages: [{ role: 'user', content: 'Hi' }] };
  const cases: [string, number | undefined, string][] = [
    [lines(ok, { messages: [] }), 2, '"messages" must be a non-empty list of messages, got [] (messages layout) — e.g. "messages": [{"role": "user", "content": "Hi"}, …]'],
    [lines(ok, { messages: [{ role: 'user' }] }), 2, '"messages"[0] must be {"role": string, "content": string or a list of text parts}'],
    [lines(ok, { messages: [{ role: 'user', content: 3 }] }), 2, '"messages"[0] must be {"role": string, "content": string or a list of text parts}, got {"role":"user","content":3}'],
    [lines(ok, { messages: [{ role: 'user', content: [] }] }), 2, '"messages"[0] must be {"role": string, "content": string or a list of text parts}'],
    [lines(ok, { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: 'x' } }] }] }), 2,
      '"messages"[0].content[1] is a "image_url" part: a language model reads text parts ({"type": "text", "text": string}) only (messages layout) — drop the line, or keep only its text parts'],
    [lines(ok, { messages: [{ role: 'user', content: [{ type: 'text' }] }] }), 2, '"messages"[0].content[0] is a text part without a "text" string, got {"type":"text"} (messages layout)'],
    [lines(ok, { text: 'x' }), 2, 'missing field "messages" (messages layout) — the first line is in the messages layout, so every line needs "messages"'],
    [lines({ conversations: [{ from: 'robot', value: 'x' }] }), 1, '"conversations"[0].from is "robot" (conversations (ShareGPT) layout) — use one of human, user, gpt, assistant, system, tool'],
    [lines({ prompt: 'a', completion: [{ role: 'assistant', content: 'b' }] }), 1, '"prompt" and "completion" must both be strings (plain text) or both lists of messages'],
    [lines({ body: 'x' }), 1, 'missing field "text" — every line of a text corpus in JSON Lines needs a "text" string, e.g. {"text": "The river flows to the sea."}, or a conversation: "messages", "conversations", "prompt" + "completion"'],
    [lines({ content: 5 }), 1, '"content" must be a string, got 5'],
    [lines({ instruction: 'a', output: 3 }), 1, '"output" must be a string, got 3 (alpaca layout)'],
    // A JSON array: errors name the line its element starts on.
    ['[\n  {"text": "a"},\n  {"text": "b",\n   "x": 1},\n  7\n]\n', 5, 'element 2 of the array is not a JSON object'],
    ['[\n  {"text": "a"},\n\n  {"body": "b"}\n]', 4, 'missing field "text"'],
    ['[{"text": "a"},', undefined, 'starts with "[" but is not valid JSON'],
    ['[]', undefined, 'is an empty JSON array'],
  ];
  assertFileErrors((f) => readJsonlTexts(f, chatml), cases);
  // A conversation and no template to render it with.
  assertFileErrors((f) => readJsonlTexts(f, undefined), [[lines(ok), 1,
    'this line is a conversation, and the model has no chat template to render it with (messages layout) — use a model whose tokenizer_config.json has a "chat_template"']]);
  // A template that refuses the conversation (raise_exception in Jinja) is named with the line.
  const strict: ChatRenderer = { source: 'tokenizer_config.json', render: () => { throw new Error('Conversation roles must alternate user/assistant'); } };
  assertFileErrors((f) => readJsonlTexts(f, strict), [[lines(ok), 1,
    'the chat template of tokenizer_config.json could not render it: Conversation roles must alternate user/assistant (messages layout)']]);
});
