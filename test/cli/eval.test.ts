// `kdqat eval` end to end (child processes) against independent computations, and its errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forwardDepth, KAPPA_MATMUL, reorderBound } from '../tolerance.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { intTensor, noGrad, logSoftmax } from '../../src/tensor/index.js';
import { loadModelDir } from '../../src/io/model-dir.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { loadMultipleChoice, packSequences } from '../../src/data/index.js';
import { perplexity } from '../../src/eval/perplexity.js';
import { lmLogits, type Model } from '../../src/models/model.js';
import type { LlamaConfig } from '../../src/models/llama.js';
import { runEval, type Output } from '../../src/cli/eval.js';
import { kdqat, makeFixture, TEXT, type Fixture } from './fixture.js';

let fx: Fixture;
before(() => { fx = makeFixture('eval'); });
after(() => fx?.cleanup());

const quiet: Output = { stdout: () => {}, stderr: () => {}, isTTY: false };
const llamaModel = (dir: string): Model => {
  const m = loadModelDir(dir);
  return { arch: 'llama', config: m.config as LlamaConfig, params: m.params };
};

// Text the tokenizer has not seen, with odd spacing and Unicode: any file must work.
const USER_TEXT = 'Notes from the harbour — 3 ships left at dawn.\n\n  Wind: NE, strong; the river was high.\r\nÉté à la mer!\n';

const MC_ITEMS = [
  { context: 'The river flows to the', choices: ['sea', 'mill', 'dog'], label: 0 },
  { context: 'A quick brown', choices: ['fox jumps', 'ocean', 'morning walk'], label: 0 },
  { context: 'Ships sail across the', choices: ['fields', 'ocean'], label: 1 },
  { context: '', choices: ['The farmers', 'The wind'], label: 1 },
  { context: 'In the morning the farmers walk to the fields with their', choices: ['tools.', 'ships.', 'dogs.'], label: 0 },
];

test('eval --text: perplexity = exp(mean NLL) of perplexity() over the same windows (full + tail)', () => {
  const file = fx.file('user.txt', USER_TEXT);
  const r = kdqat('eval', '--model', fx.llama, '--text', file, '--seq', '7', '--batch-size', '3', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'silent on stderr with --json');
  const report = JSON.parse(r.stdout);
  assert.equal(report.model, fx.llama);
  assert.equal(report.results.length, 1);
  const got = report.results[0];

  // Independent: tokenize without specials (line ends read as \n), whole windows by
  // packSequences, the rest as one window.
  const tok = loadTokenizer(path.join(fx.llama, 'tokenizer.json'));
  const ids = tok.encode(USER_TEXT.replace(/\r\n?/g, '\n'), { addSpecialTokens: false });
  const model = llamaModel(fx.llama);
  const full = packSequences([ids], { seqLen: 7 });
  const a = perplexity(model, full);
  const tailIds = Int32Array.from(ids.slice(full.count * 7));
  assert.ok(tailIds.length >= 2, 'the test text should leave a partial window');
  const b = perplexity(model, { data: tailIds, count: 1, width: tailIds.length });
  const tokens = a.tokens + b.tokens;
  const nll = (a.nll * a.tokens + b.nll * b.tokens) / tokens;
  assert.equal(got.tokens, ids.length - 1);
  assert.equal(tokens, ids.length - 1);
  assert.equal(got.windows, full.count + 1);
  // The child batches the windows differently (--batch-size 3 vs one call per group here), so
  // the kernels may sum in other orders: each −log p is within the float32 bound of the forward
  // pass relative to its magnitude plus the logit scale (reorderBound, as for batched scoring in
  // test/eval/multiple-choice.test.ts), and so is their mean; exp turns that into a relative error.
  const cfg = model.config as LlamaConfig;
  const rel = reorderBound(forwardDepth(cfg.numHiddenLayers), Math.max(cfg.intermediateSize, cfg.hiddenSize, 7), KAPPA_MATMUL);
  const tolNll = rel * (nll + 1);
  assert.ok(Math.abs(got.nll - nll) <= tolNll, `nll ${got.nll} vs ${nll} (bound ${tolNll})`);
  assert.ok(Math.abs(got.ppl - Math.exp(nll)) <= Math.exp(nll) * (Math.expm1(tolNll) + 1e-15), `ppl ${got.ppl} vs ${Math.exp(nll)}`);
  assert.equal(got.seq, 7);
  assert.ok(report.seconds.total >= report.seconds.load);
});

test('eval --text FILE.jsonl: the lines\' "text" joined with EOS after each, scored like --text (same windows, same NLL)', () => {
  const docs = ['Notes from the harbour: 3 ships left at dawn.', 'Été à la mer!', 'The river was high.'];
  const file = fx.file('docs.jsonl', docs.map((t) => JSON.stringify({ text: t, id: 1 })).join('\n') + '\n');
  const r = kdqat('eval', '--model', fx.llama, '--text', file, '--seq', '7', '--json');
  assert.equal(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout).results[0];
  const tok = loadTokenizer(path.join(fx.llama, 'tokenizer.json'));
  const eos = 1; // the fixture's eos_token_id
  const ids = docs.flatMap((d) => [...tok.encode(d, { addSpecialTokens: false }), eos]);
  assert.equal(got.documents, 3);
  assert.equal(got.tokens, ids.length - 1);
  const model = llamaModel(fx.llama);
  const full = packSequences([ids], { seqLen: 7 });
  const a = perplexity(model, full);
  const tailIds = Int32Array.from(ids.slice(full.count * 7));
  const b = tailIds.length >= 2 ? perplexity(model, { data: tailIds, count: 1, width: tailIds.length }) : { nll: 0, tokens: 0 };
  const nll = (a.nll * a.tokens + b.nll * b.tokens) / (a.tokens + b.tokens);
  const cfg = model.config as LlamaConfig;
  const tolNll = reorderBound(forwardDepth(cfg.numHiddenLayers), Math.max(cfg.intermediateSize, cfg.hiddenSize, 7), KAPPA_MATMUL) * (nll + 1);
  assert.ok(Math.abs(got.nll - nll) <= tolNll, `nll ${got.nll} vs ${nll} (bound ${tolNll})`);
  const bad = kdqat('eval', '--model', fx.llama, '--text', fx.file('bad.jsonl', '{"body": "x"}\n'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--text \S*bad\.jsonl:1: missing field "text"/);
});

/** Summed log p(" " + choice | context) by a plain forward of each sequence alone; with a
 *  continuation, log p(" " + continuation | choice). */
function manualScores(model: Model, encode: (s: string) => number[], item: { context: string; choices: string[]; continuation?: string }, prefix: number): number[] {
  return item.choices.map((c) => {
    const ctx = encode(item.continuation === undefined ? item.context : c);
    const ctxIds = ctx.length ? ctx : [prefix];
    const cont = encode(` ${item.continuation ?? c}`);
    const all = [...ctxIds, ...cont];
    const V = model.config.vocabSize, T = all.length - 1;
    const logp = noGrad(() => logSoftmax(lmLogits(model, intTensor(all.slice(0, -1), [1, T]))).f32);
    let s = 0;
    for (let p = ctxIds.length; p < all.length; p++) s += logp[(p - 1) * V + all[p]];
    return s;
  });
}
const argmax = (x: number[]): number => x.indexOf(Math.max(...x));

test('eval --mc on a user JSONL file: acc/acc_norm match a direct log-likelihood computation', () => {
  const file = fx.file('items.jsonl', MC_ITEMS.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const r = kdqat('eval', '--model', fx.llama, '--mc', file, '--batch-size', '4', '--json');
  assert.equal(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout).results[0];
  assert.equal(got.kind, 'multiple-choice');
  assert.equal(got.items, MC_ITEMS.length);
  assert.ok(got.acc >= 0 && got.acc <= 1 && got.acc_norm >= 0 && got.acc_norm <= 1);

  const tok = loadTokenizer(path.join(fx.llama, 'tokenizer.json'));
  const encode = (s: string): number[] => tok.encode(s, { addSpecialTokens: false });
  const model = llamaModel(fx.llama);
  let acc = 0, accNorm = 0;
  for (const item of MC_ITEMS) {
    const s = manualScores(model, encode, item, 1); // empty context: predicted from EOS (id 1)
    if (argmax(s) === item.label) acc++;
    if (argmax(s.map((x, i) => x / item.choices[i].length)) === item.label) accNorm++;
  }
  assert.equal(got.acc, acc / MC_ITEMS.length);
  assert.equal(got.acc_norm, accNorm / MC_ITEMS.length);
});

test('eval --mc on rows of Hugging Face datasets (WinoGrande, COPA): the layout noted, acc as scored by hand', async () => {
  const tok = loadTokenizer(path.join(fx.llama, 'tokenizer.json'));
  const encode = (s: string): number[] => tok.encode(s, { addSpecialTokens: false });
  const model = llamaModel(fx.llama);
  // Short rows, so every choice fits the fixture model's 64 positions and the scores are the plain ones.
  const rows = {
    winogrande: [
      { sentence: 'The ships sail to the _ at dawn.', option1: 'sea', option2: 'fields', answer: '1' },
      { sentence: 'The farmers walk to the _ with tools.', option1: 'river', option2: 'fields', answer: '2' },
    ],
    copa: [
      { premise: 'The river was high.', choice1: 'It rained.', choice2: 'The dog ran.', question: 'cause', label: 0 },
      { premise: 'The wind was strong.', choice1: 'Ships sailed fast.', choice2: 'The fox slept.', question: 'effect', label: 0 },
    ],
  };
  const described = { winogrande: 'WinoGrande (allenai/winogrande), prompted as lm-evaluation-harness\'s winogrande/', copa: 'COPA (super_glue copa), prompted as' };
  for (const [name, items] of Object.entries(rows) as [keyof typeof rows, object[]][]) {
    const file = fx.file(`${name}.jsonl`, items.map((x) => JSON.stringify(x)).join('\n') + '\n');
    let out = '';
    const r = await runEval({ model: fx.llama, mc: [file] }, { stdout: (x) => { out += x; }, stderr: () => {}, isTTY: false });
    assert.ok(out.includes(`note: ${file}: ${name} rows (${described[name]}`), out);
    const got = r.results[0];
    assert.equal(got.layout, name);
    const recs = loadMultipleChoice(file); // the rows as items: test/data/mc-layouts.test.ts holds these to the harness
    const acc = recs.filter((item) => argmax(manualScores(model, encode, item, 1)) === item.label).length;
    assert.equal(got.acc, acc / recs.length, name);
    assert.equal(got.truncated_choices, 0);
  }
});

test('Parquet text: eval --text scores a .parquet file as the same texts in JSON Lines; qat --data and pretrain --corpus take one', async () => {
  const pq = fileURLToPath(new URL('../fixtures/data/parquet/text-zstd.parquet', import.meta.url));
  const texts = ['The river flows to the sea.', 'Été à la mer — 3 ships.', 'Line with\nnewline and emoji 🐳', 'x'.repeat(5000)];
  const jsonl = fx.file('same.jsonl', texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const a = await runEval({ model: fx.llama, text: [pq], seq: '32' }, quiet);
  const b = await runEval({ model: fx.llama, text: [jsonl], seq: '32' }, quiet);
  assert.deepEqual({ ...a.results[0], source: '', seconds: 0 }, { ...b.results[0], source: '', seconds: 0 });
  const q = kdqat('qat', '--teacher', fx.llama, '--data', pq, '--steps', '1', '--seq-len', '16', '--batch', '2', '--eval-every', '0', '--threads', '1', '--out', path.join(fx.root, 'pq-qat'));
  assert.equal(q.code, 0, q.stderr);
  const p = kdqat('pretrain', '--arch', 'llama', '--corpus', pq, '--hidden', '16', '--layers', '1', '--heads', '2', '--kv-heads', '2', '--intermediate', '32',
    '--vocab', '270', '--seq-len', '16', '--steps', '1', '--batch', '2', '--eval-every', '0', '--threads', '1', '--out', path.join(fx.root, 'pq-pre'));
  assert.equal(p.code, 0, p.stderr);
  // Labelled Parquet files: multiple choice (ARC's layout), classification (SST-2) for eval and finetune.
  const arc = fileURLToPath(new URL('../fixtures/data/parquet/arc.parquet', import.meta.url));
  const sst2 = fileURLToPath(new URL('../fixtures/data/parquet/sst2.parquet', import.meta.url));
  const mc = await runEval({ model: fx.llama, mc: [arc] }, quiet);
  assert.deepEqual([mc.results[0].layout, mc.results[0].items], ['arc', 2]);
  const cls = await runEval({ model: fx.bert, cls: [sst2] }, quiet);
  assert.deepEqual([cls.results[0].examples, cls.results[0].labels], [3, 2]);
  const ft = kdqat('finetune', '--model', fx.bert, '--train', sst2, '--dev', sst2, '--max-steps', '1', '--max-len', '16', '--threads', '1', '--out', path.join(fx.root, 'pq-ft'));
  assert.equal(ft.code, 0, ft.stderr);
  const bad = kdqat('eval', '--model', fx.llama, '--text', fileURLToPath(new URL('../fixtures/data/parquet/notext.parquet', import.meta.url)));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--text \S*notext\.parquet: has no text column \(columns: id, body\)/);
});

test('Arrow files (a datasets save_to_disk directory): eval --text scores the directory as the Parquet file of its rows; qat --data, --mc and --cls take them', async () => {
  const fixture = (f: string): string => fileURLToPath(new URL(`../fixtures/data/${f}`, import.meta.url));
  const disk = fixture('arrow/save-to-disk');
  const a = await runEval({ model: fx.llama, text: [disk], seq: '32' }, quiet);
  const b = await runEval({ model: fx.llama, text: [fixture('parquet/text-zstd.parquet')], seq: '32' }, quiet);
  assert.deepEqual({ ...a.results[0], source: '', seconds: 0 }, { ...b.results[0], source: '', seconds: 0 });
  const q = kdqat('qat', '--teacher', fx.llama, '--data', disk, '--steps', '1', '--seq-len', '16', '--batch', '2', '--eval-every', '0', '--threads', '1', '--out', path.join(fx.root, 'arrow-qat'));
  assert.equal(q.code, 0, q.stderr);
  const mc = await runEval({ model: fx.llama, mc: [fixture('arrow/arc.arrow')] }, quiet);
  assert.deepEqual([mc.results[0].layout, mc.results[0].items], ['arc', 2]);
  const cls = await runEval({ model: fx.bert, cls: [fixture('arrow/sst2.arrow')] }, quiet);
  assert.deepEqual([cls.results[0].examples, cls.results[0].labels], [3, 2]);
});

test('a classification file with its own field names: eval --cls and finetune take --text-field / --label-field', async () => {
  const rows = [{ review: 'the river flows', sentiment: 1 }, { review: 'the lazy dog', sentiment: 0 }, { review: 'ships sail', sentiment: 1 }];
  const file = fx.file('reviews.jsonl', rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const r = await runEval({ model: fx.bert, cls: [file], textField: 'review', labelField: 'sentiment' }, quiet);
  assert.deepEqual([r.results[0].examples, r.results[0].labels], [3, 2]);
  await assert.rejects(runEval({ model: fx.bert, cls: [file] }, quiet), /reviews\.jsonl:1: missing field "text" .*name yours with --text-field/);
  await assert.rejects(runEval({ model: fx.llama, text: [file], labelField: 'sentiment' }, quiet), /--label-field names the label field of --cls files; give --cls FILE/);
  const ft = kdqat('finetune', '--model', fx.bert, '--train', file, '--dev', file, '--text-field', 'review', '--label-field', 'sentiment',
    '--max-steps', '1', '--max-len', '16', '--threads', '1', '--out', path.join(fx.root, 'fields-ft'));
  assert.equal(ft.code, 0, ft.stderr);
  const builtin = kdqat('finetune', '--model', fx.bert, '--task', 'brown-genre', '--text-field', 'review', '--out', path.join(fx.root, 'fields-ft2'));
  assert.equal(builtin.code, 2);
  assert.match(builtin.stderr, /--text-field\/--label-field name the fields of --train\/--dev\/--test files; a built-in --task has its own/);
});

test('a corpus with its own text field: eval --text, qat --data and pretrain --corpus take --text-field (JSON Lines, Parquet); errors name the flag', async () => {
  const texts = ['the river flows to the sea', 'fellow citizens of the union', 'ships sail on the river'];
  const own = fx.file('articles.jsonl', texts.map((t, i) => JSON.stringify({ id: i, article: t })).join('\n') + '\n');
  const plain = fx.file('articles-text.jsonl', texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const score = async (file: string, textField?: string) => ({ ...(await runEval({ model: fx.llama, text: [file], seq: '16', textField }, quiet)).results[0], source: '', seconds: 0 });
  assert.deepEqual(await score(own, 'article'), await score(plain));
  // A Parquet column by name: SST-2's "sentence", as the same sentences in JSON Lines.
  const sst2 = fileURLToPath(new URL('../fixtures/data/parquet/sst2.parquet', import.meta.url));
  const sentences = fx.file('sentences.jsonl', ['a fine film ', 'dull and slow', 'the best of the year'].map((text) => JSON.stringify({ text })).join('\n') + '\n');
  assert.deepEqual(await score(sst2, 'sentence'), await score(sentences));
  await assert.rejects(runEval({ model: fx.llama, text: [own], textField: 'body' }, quiet), /articles\.jsonl:1: missing field "body" \(--text-field body\) — the line's fields are "id", "article"/);
  await assert.rejects(runEval({ model: fx.llama, text: [fx.file('plain.txt', 'Some text.\n')], textField: 'article' }, quiet), /plain\.txt: --text-field article names a field of JSON Lines, Parquet or Arrow files; this is plain text/);
  const q = kdqat('qat', '--teacher', fx.llama, '--data', own, '--text-field', 'article', '--steps', '1', '--seq-len', '8', '--batch', '1', '--eval-every', '0', '--threads', '1', '--out', path.join(fx.root, 'field-qat'));
  assert.equal(q.code, 0, q.stderr);
  const ql = kdqat('qat', '--teacher', fx.llama, '--data', own, '--label-field', 'x', '--steps', '1', '--out', path.join(fx.root, 'field-qat2'));
  assert.equal(ql.code, 2);
  assert.match(ql.stderr, /--label-field names the label of --task\/--dev files; \S+ is a LLaMA decoder/);
  const pre = (corpus: string, out: string) => kdqat('pretrain', '--arch', 'llama', '--corpus', corpus, '--text-field', 'article', '--hidden', '16', '--layers', '1', '--heads', '2', '--kv-heads', '2',
    '--intermediate', '32', '--vocab', '270', '--seq-len', '8', '--steps', '1', '--batch', '1', '--eval-every', '0', '--threads', '1', '--out', path.join(fx.root, out));
  const p = pre(own, 'field-pre');
  assert.equal(p.code, 0, p.stderr);
  const pb = pre('sotu', 'field-pre2');
  assert.equal(pb.code, 1);
  assert.match(pb.stderr, /--text-field article: names the field of JSON Lines, Parquet or Arrow corpora; sotu is built in/);
});

test('eval: several evaluations at once, a readable table, --cls on a BERT classifier', () => {
  const text = fx.file('table.txt', TEXT);
  const mc = fx.file('table.jsonl', MC_ITEMS.slice(0, 2).map((x) => JSON.stringify(x)).join('\n'));
  const r = kdqat('eval', '--model', fx.llama, '--text', text, '--mc', mc, '--mc', mc);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /perplexity\s+.*table\.txt\s+ppl\s+\d+\.\d+/);
  assert.equal(r.stdout.match(/multiple-choice/g)?.length, 2);
  assert.match(r.stdout, /acc_norm/);

  const cls = fx.file('cls.tsv', 'text\tlabel\nthe river flows\tpos\nthe lazy dog\tneg\nships sail\tpos\n');
  const c = kdqat('eval', '--model', fx.bert, '--cls', cls, '--json');
  assert.equal(c.code, 0, c.stderr);
  const res = JSON.parse(c.stdout).results[0];
  assert.deepEqual([res.kind, res.examples, res.labels], ['classification', 3, 2]);
  assert.ok([0, 1 / 3, 2 / 3, 1].includes(res.acc));
});

test('eval progress: a line per batch on a terminal, nothing with --json or off a terminal', async () => {
  const text = fx.file('progress.txt', TEXT);
  const capture = (isTTY: boolean) => {
    const o = { out: '', err: '' };
    return { o, io: { stdout: (s: string) => { o.out += s; }, stderr: (s: string) => { o.err += s; }, isTTY } };
  };
  const tty = capture(true);
  await runEval({ model: fx.llama, text: [text], seq: '4', batchSize: '2' }, tty.io);
  assert.match(tty.o.err, /^\r\x1b\[Kperplexity .*progress\.txt: 2\/(\d+)\r.*: 4\/\1\r/);
  assert.match(tty.o.err, /: (\d+)\/\1\r\x1b\[K$/, 'ends complete, with the line cleared');
  assert.match(tty.o.out, /^model: .*llama — a LLaMA decoder/);
  const json = capture(true);
  await runEval({ model: fx.llama, text: [text], seq: '4', json: true }, json.io);
  assert.equal(json.o.err, '');
  JSON.parse(json.o.out);
  const pipe = capture(false);
  await runEval({ model: fx.llama, text: [text], seq: '4' }, pipe.io);
  assert.equal(pipe.o.err, '');
});

test('eval errors name the file or flag and the fix', async () => {
  const run = (o: Parameters<typeof runEval>[0]) => runEval(o, quiet);
  const text = fx.file('ok.txt', TEXT);
  await assert.rejects(run({ model: path.join(fx.root, 'nope'), text: [text] }), /--model .*nope.* does not exist/);
  const bad = path.join(fx.root, 'notamodel');
  fs.mkdirSync(bad);
  await assert.rejects(run({ model: bad, text: [text] }), /--model .*notamodel: cannot load the model: .*config\.json/);
  // A kdqat qat output directory: the student is one level down, and the error says where.
  const runDir = path.join(fx.root, 'qat-run');
  fs.cpSync(fx.llama, path.join(runDir, 'student'), { recursive: true });
  await assert.rejects(run({ model: runDir, text: [text] }), /qat-run looks like a run directory: the model is in \S*qat-run\/student/);
  await assert.rejects(run({ model: fx.llamaNoTok, text: [text] }), /no tokenizer\.json .*pass --tokenizer FILE/);
  const ok = await run({ model: fx.llamaNoTok, tokenizer: path.join(fx.root, 'tokenizer.json'), text: [text] });
  assert.ok((ok.results[0].ppl as number) > 1);
  await assert.rejects(run({ model: fx.llamaNoTok, tokenizer: path.join(fx.root, 'missing.json'), text: [text] }), /--tokenizer .*missing\.json: file not found/);
  const empty = fx.file('empty.txt', ' \n\n');
  await assert.rejects(run({ model: fx.llama, text: [empty] }), /--text .*empty\.txt: the file is empty/);
  await assert.rejects(run({ model: fx.llama, text: [path.join(fx.root, 'gone.txt')] }), /--text .*gone\.txt: file not found/);
  const mc = fx.file('bad.jsonl', `${JSON.stringify(MC_ITEMS[0])}\n{"context": "x", "choices": ["a"], "label": 0}\n`);
  await assert.rejects(run({ model: fx.llama, mc: [mc] }), /--mc .*bad\.jsonl:2: "choices" has 1 entries, need at least 2/);
  const notJson = fx.file('bad2.jsonl', `${JSON.stringify(MC_ITEMS[0])}\n\n{oops\n`);
  await assert.rejects(run({ model: fx.llama, mc: [notJson] }), /bad2\.jsonl:3: not valid JSON/);
  await assert.rejects(run({ model: fx.llama, mc: ['no-such-task'] }), /--mc no-such-task: no such file, and not a built-in task \(continuation, wordnet-def\)/);
  await assert.rejects(run({ model: fx.bert, mc: [mc] }), /--mc .*BERT encoder .*causal LM/);
  await assert.rejects(run({ model: fx.bert, text: [text] }), /--text .*BERT encoder .*causal LM/);
  await assert.rejects(run({ model: fx.llama, cls: ['brown-genre'] }), /--cls brown-genre: .*LLaMA decoder.*needs an encoder classifier/);
  await assert.rejects(run({ model: fx.llama, corpus: ['wiki'] }), /--corpus wiki: unknown corpus; use one of sotu, brown, moby-dick/);
  await assert.rejects(run({ model: fx.llama, text: [text], seq: '65' }), /--seq-len 65 exceeds the model's max_position_embeddings \(64\)/);
  await assert.rejects(run({ model: fx.llama }), /nothing to evaluate/);
  await assert.rejects(run({ model: fx.bert, cls: ['brown-genre'] }), /--cls brown-genre: the classifier's labels \(neg, pos\) are not the task's \(press, general, learned, fiction\)/);
  const cls3 = fx.file('three.jsonl', '{"text": "a", "label": 0}\n{"text": "b", "label": 2}\n');
  await assert.rejects(run({ model: fx.bert, cls: [cls3] }), /--cls .*three\.jsonl: the data has 3 labels .* 2 outputs/);
  const clsBad = fx.file('badlabel.jsonl', '{"text": "a", "label": "pos"}\n{"text": "b", "label": "meh"}\n');
  await assert.rejects(run({ model: fx.bert, cls: [clsBad] }), /badlabel\.jsonl:2: unknown label "meh"/);
});

test('eval: a failing command exits 1 with the message on stderr', () => {
  const r = kdqat('eval', '--model', fx.llamaNoTok, '--text', fx.file('x.txt', TEXT));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^kdqat: --model .*llama-notok: no tokenizer\.json in the model directory; pass --tokenizer FILE/);
  assert.equal(r.stdout, '');
});

test('eval --ppl-convention llama.cpp: chunks of --seq, second half scored; needs 2·seq tokens; bad names refused', () => {
  const file = fx.file('conv.txt', USER_TEXT.repeat(3));
  const r = kdqat('eval', '--model', fx.llama, '--text', file, '--seq', '8', '--ppl-convention', 'llama.cpp', '--json');
  assert.equal(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout).results[0];
  const tok = loadTokenizer(path.join(fx.llama, 'tokenizer.json'));
  const ids = tok.encode(USER_TEXT.repeat(3).replace(/\r\n?/g, '\n'), { addSpecialTokens: false });
  assert.equal(got.convention, 'llama.cpp');
  assert.equal(got.windows, Math.floor(ids.length / 8));
  assert.equal(got.tokens, got.windows * (8 - 1 - 4));
  assert.ok(tok.encode(USER_TEXT, { addSpecialTokens: false }).length < 2 * 64, 'USER_TEXT is under 2·64 tokens');
  const short = kdqat('eval', '--model', fx.llama, '--text', fx.file('short.txt', USER_TEXT), '--seq', '64', '--ppl-convention', 'llama.cpp');
  assert.notEqual(short.code, 0);
  assert.match(short.stderr, /llama\.cpp's perplexity needs at least 2·--seq-len/);
  const bad = kdqat('eval', '--model', fx.llama, '--text', file, '--ppl-convention', 'hf');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--ppl-convention must be kdqat or llama\.cpp, got "hf"/);
});
