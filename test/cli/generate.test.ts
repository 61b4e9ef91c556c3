// generate(): greedy equals an independent argmax loop, sampling is seeded, EOS stops it;
// `kdqat generate` end to end prints the decoded greedy continuation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { llamaForward, type LlamaConfig } from '../../src/models/llama.js';
import { loadModelDir } from '../../src/io/model-dir.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { generate, KvDecoder } from '../../src/models/generate.js';
import type { Model } from '../../src/models/model.js';
import { runGenerate } from '../../src/cli/generate.js';
import { kdqat, makeFixture, type Fixture } from './fixture.js';
import { KAPPA_MATMUL, forwardDepth, reorderBound, scaleOf } from '../tolerance.js';

let fx: Fixture;
let model: Model & { arch: 'llama' };
before(() => {
  fx = makeFixture('gen');
  const m = loadModelDir(fx.llama);
  model = { arch: 'llama', config: m.config as LlamaConfig, params: m.params };
});
after(() => fx?.cleanup());

/** Greedy decoding written out plainly: full forward, argmax of the last row, append. */
function referenceGreedy(prompt: number[], n: number, eos: number[]): number[] {
  const ids = [...prompt], V = model.config.vocabSize;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const ctx = ids.slice(-model.config.maxPositionEmbeddings);
    const logits = noGrad(() => llamaForward(model.params, model.config, intTensor(ctx, [1, ctx.length])).logits.f32);
    const last = Array.from(logits.subarray((ctx.length - 1) * V));
    const next = last.indexOf(Math.max(...last));
    out.push(next);
    ids.push(next);
    if (eos.includes(next)) break;
  }
  return out;
}

test('KV-cached steps give the logits of the full forward at every position', () => {
  const ids = Array.from({ length: model.config.maxPositionEmbeddings }, (_, i) => (i * 37 + 11) % model.config.vocabSize);
  const V = model.config.vocabSize, T = ids.length;
  const full = noGrad(() => llamaForward(model.params, model.config, intTensor(ids, [1, T])).logits.f32);
  const kv = new KvDecoder(model);
  let worst = 0;
  noGrad(() => ids.forEach((id, p) => {
    const step = kv.step(id);
    for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(step[v] - full[p * V + v]));
  }));
  // KV cache vs full forward: the same math in other shapes (reorderBound), reductions at most
  // max(intermediate, hidden, positions) long, κ = KAPPA_MATMUL, relative to the logits' scale.
  const c = model.config;
  const tol = reorderBound(forwardDepth(c.numHiddenLayers), Math.max(c.intermediateSize, c.hiddenSize, T), KAPPA_MATMUL) *
    Math.max(1, scaleOf(full));
  assert.ok(worst <= tol, `max |Δ logit| ${worst} > bound ${tol}`);
  // The same positions fed in chunks (a prompt, then more) give the last position's logits.
  const chunked = new KvDecoder(model);
  noGrad(() => chunked.step(ids.slice(0, 40)));
  const last = noGrad(() => chunked.step(ids.slice(40)));
  for (let v = 0; v < V; v++) assert.ok(Math.abs(last[v] - full[(T - 1) * V + v]) <= tol);
  assert.throws(() => chunked.step(1), /sequence length 65 exceeds max_position_embeddings 64/);
});

test('greedy generation (cached and uncached) equals a plain argmax loop, through the sliding window too', () => {
  const prompt = [5, 17, 42, 99, 7];
  const expected = referenceGreedy(prompt, 70, []); // 75 > 64 positions: the window slides
  const r = generate(model, prompt, { maxNewTokens: 70 });
  assert.deepEqual(r.tokens, expected);
  assert.deepEqual(generate(model, prompt, { maxNewTokens: 70, cache: false }).tokens, expected);
  assert.equal(r.tokens.length, 70);
  assert.equal(r.stoppedAtEos, false);
});

test('EOS stops generation (and is returned); sampling is seeded; top-k 1 is greedy', () => {
  const prompt = [5, 17, 42];
  const greedy = generate(model, prompt, { maxNewTokens: 12 }).tokens;
  const stop = greedy[3];
  const r = generate(model, prompt, { maxNewTokens: 12, eosIds: [stop] });
  assert.deepEqual(r.tokens, greedy.slice(0, greedy.indexOf(stop) + 1));
  assert.equal(r.stoppedAtEos, true);
  const a = generate(model, prompt, { maxNewTokens: 12, temperature: 1.5, seed: 3 }).tokens;
  assert.deepEqual(generate(model, prompt, { maxNewTokens: 12, temperature: 1.5, seed: 3 }).tokens, a);
  assert.notDeepEqual(generate(model, prompt, { maxNewTokens: 12, temperature: 1.5, seed: 4 }).tokens, a);
  assert.deepEqual(generate(model, prompt, { maxNewTokens: 12, temperature: 2, topK: 1, seed: 9 }).tokens, greedy);
  const k3 = generate(model, prompt, { maxNewTokens: 1, temperature: 5, topK: 3, seed: 1 }).tokens[0];
  const logits = noGrad(() => llamaForward(model.params, model.config, intTensor(prompt, [1, 3])).logits.f32);
  const last = Array.from(logits.subarray(2 * model.config.vocabSize));
  const top3 = last.map((x, i) => [x, i]).sort((p, q) => q[0] - p[0]).slice(0, 3).map((p) => p[1]);
  assert.ok(top3.includes(k3));
});

test('kdqat generate: greedy output is the decoded independent greedy continuation', () => {
  const tok = loadTokenizer(path.join(fx.llama, 'tokenizer.json'));
  const prompt = tok.encode('The river flows');
  const expected = referenceGreedy(prompt, 16, [1]);
  const r = kdqat('generate', '--model', fx.llama, '--prompt', 'The river flows', '--max-new-tokens', '16', '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.tokens, expected);
  assert.equal(j.continuation, tok.decode(expected.filter((t) => t !== 1), { skipSpecialTokens: true }));
  const plain = kdqat('generate', '--model', fx.llama, '--prompt', 'The river flows', '--max-new-tokens', '16');
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, `${j.continuation}\n`);
});

test('generate errors', async () => {
  const sink = (): void => {};
  await assert.rejects(runGenerate({ model: fx.bert, prompt: 'x' }, sink), /--model .*bert is a BERT encoder .*generate needs a causal LM/);
  await assert.rejects(runGenerate({ model: fx.llamaNoTok, prompt: 'x' }, sink), /no tokenizer\.json .*pass --tokenizer FILE/);
  await assert.rejects(runGenerate({ model: fx.llama, prompt: 'x', temperature: '-1' }, sink), /--temperature must be a number ≥ 0/);
  await assert.rejects(runGenerate({ model: fx.llama, prompt: 'x', maxNewTokens: '0' }, sink), /--max-new-tokens must be an integer ≥ 1/);
  const r = await runGenerate({ model: fx.llamaNoTok, tokenizer: path.join(fx.root, 'tokenizer.json'), prompt: '', maxNewTokens: '3' }, sink);
  assert.equal(r.tokens.length <= 3, true); // empty prompt: starts from BOS
});

test('generate --chat: the message (and --system) in the model\'s chat template, the assistant\'s turn opened, as transformers.js tokenizes it; generation_config.json\'s eos ids stop it', async () => {
  const dir = path.join(fx.root, 'chat-model');
  fs.cpSync(fx.llama, dir, { recursive: true });
  const template = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), bos_token: '<s>', eos_token: '</s>', chat_template: template }));
  const sink = (): void => {};
  const r = await runGenerate({ model: dir, chat: 'Where does the river go?', system: 'Be brief.', maxNewTokens: '8' }, sink);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = fx.root;
  const js = await AutoTokenizer.from_pretrained('chat-model');
  const want = js.apply_chat_template([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Where does the river go?' }],
    { add_generation_prompt: true, tokenize: true, return_tensor: false, return_dict: false }) as unknown as number[];
  assert.deepEqual(r.promptTokens, want);
  assert.deepEqual(r.tokens, referenceGreedy(want, 8, [1]));
  // An end-of-turn id listed only in generation_config.json stops generation there.
  const first = r.tokens[0];
  assert.notEqual(first, 1, 'the fixture answers with a token other than EOS first');
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [1, first] }));
  const stopped = await runGenerate({ model: dir, chat: 'Where does the river go?', system: 'Be brief.', maxNewTokens: '8' }, sink);
  assert.deepEqual([stopped.tokens, stopped.stoppedAtEos], [[first], true]);
  await assert.rejects(runGenerate({ model: fx.llama, chat: 'hi' }, sink), /--chat: .*llama has no chat template .*use --prompt/);
  await assert.rejects(runGenerate({ model: dir, chat: 'hi', prompt: 'x' }, sink), /give one of --prompt TEXT .* and --chat MESSAGE/);
  await assert.rejects(runGenerate({ model: dir }, sink), /give one of --prompt TEXT/);
  await assert.rejects(runGenerate({ model: dir, prompt: 'x', system: 's' }, sink), /--system goes with --chat/);
  fs.writeFileSync(path.join(dir, 'generation_config.json'), '{"eos_token_id": [1, 99999]}');
  await assert.rejects(runGenerate({ model: dir, prompt: 'x' }, sink), /generation_config\.json: "eos_token_id" must be a token id or a list of ids below vocab_size/);
});
