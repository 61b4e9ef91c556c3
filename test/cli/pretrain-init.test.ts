// `kdqat pretrain --init DIR`: continuing a pre-trained model on new text (domain-adaptive
// pre-training). The run starts from DIR's weights (not a fresh initialization), keeps its sizes
// and tokenizer, refuses settings the model fixes and objectives that do not continue it, and
// resumes bit for bit like any other run.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelDir } from '../../src/io/model-dir.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { PRETRAIN_DEFAULTS, runPretrain, type PretrainConfig } from '../../src/train/pretrain.js';
import { initDefaults } from '../../src/train/pretrain-init.js';
import { silentReporter } from '../../src/cli/progress.js';
import type { Reporter } from '../../src/train/loop.js';
import { TINY, kdqat, smallTextFile, tmpDir } from './helpers.js';

const root = tmpDir('cli-pretrain-init');
const text = smallTextFile(root);
after(() => fs.rmSync(root, { recursive: true, force: true }));

const SIZES = { bert: ['--arch', 'bert', ...TINY.filter((_, i) => i < 6 || i > 7)], llama: ['--arch', 'llama', ...TINY] };
const base: Record<'bert' | 'llama', string> = { bert: '', llama: '' };
const QUIET = ['--eval-every', '0', '--save-every', '0', '--log-every', '1', '--threads', '1'];

before(async () => {
  for (const arch of ['bert', 'llama'] as const) {
    base[arch] = path.join(root, `base-${arch}`);
    const r = await kdqat('pretrain', '--corpus', text, '--out', base[arch], ...SIZES[arch], '--vocab', '300', '--steps', '30',
      '--batch', '4', '--lr', '3e-3', '--warmup', '3', ...QUIET);
    assert.equal(r.code, 0, r.stderr);
  }
});

/** The largest |a − b| over every parameter of two model directories (same names and shapes). */
function maxWeightChange(a: string, b: string): number {
  const pa = loadModelDir(a).params, pb = loadModelDir(b).params;
  assert.deepEqual([...pa.keys()].sort(), [...pb.keys()].sort());
  let m = 0;
  for (const [n, t] of pa) {
    const u = pb.get(n)!;
    assert.deepEqual(u.shape, t.shape, n);
    for (let i = 0; i < t.f32.length; i++) m = Math.max(m, Math.abs(t.f32[i] - u.f32[i]));
  }
  return m;
}

for (const arch of ['bert', 'llama'] as const) {
  it(`${arch}: --init starts from the model's weights and keeps its sizes and tokenizer`, async () => {
    // lr 1e-30: AdamW moves a weight by at most ~3.2·lr per step ((1 − β1)/√(1 − β2) with bias
    // correction) plus lr·wd·|w|, so two steps leave every weight within 1e-28 of the model's.
    const still = path.join(root, `still-${arch}`);
    const r = await kdqat('pretrain', '--init', base[arch], '--corpus', text, '--out', still, '--steps', '2', '--batch', '4',
      '--lr', '1e-30', '--warmup', '0', ...QUIET);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /continuing .* with its tokenizer/);
    assert.ok(maxWeightChange(base[arch], still) <= 1e-28, 'the weights are the model\'s');
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(still, 'config.json'), 'utf8')), JSON.parse(fs.readFileSync(path.join(base[arch], 'config.json'), 'utf8')));
    assert.ok(fs.readFileSync(path.join(still, 'tokenizer.json')).equals(fs.readFileSync(path.join(base[arch], 'tokenizer.json'))), 'the same tokenizer');
    // Its tokenizer_config.json and companion files go with it (a model with a chat template here).
    const chatty = path.join(root, `chatty-${arch}`);
    fs.cpSync(base[arch], chatty, { recursive: true });
    const cfgFile = path.join(chatty, 'tokenizer_config.json');
    fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), chat_template: '{% for m in messages %}{{ m.content }}{% endfor %}', model_max_length: 77 }));
    fs.writeFileSync(path.join(chatty, 'chat_template.jinja'), '{{ messages | length }}');
    const chattyOut = path.join(root, `chatty-out-${arch}`);
    const r2 = await kdqat('pretrain', '--init', chatty, '--corpus', text, '--out', chattyOut, '--steps', '1', '--batch', '4', ...QUIET);
    assert.equal(r2.code, 0, r2.stderr);
    const tokCfg = (d: string): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(d, 'tokenizer_config.json'), 'utf8'));
    assert.deepEqual(tokCfg(chattyOut), tokCfg(chatty), 'its tokenizer_config.json');
    assert.equal(fs.readFileSync(path.join(chattyOut, 'chat_template.jinja'), 'utf8'), '{{ messages | length }}');
    // Validation is the same computation on the same weights: the model's own final figure.
    const key = arch === 'bert' ? 'valid_mlm_loss' : 'valid_ppl';
    const summary = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'summary.json'), 'utf8'));
    assert.equal(summary(still).final[key], summary(base[arch]).final[key]);
    assert.equal(summary(still).config.init, base[arch]);
    assert.equal(summary(still).config.hidden, 32);
    assert.equal(summary(still).config.seq, 32, "--seq-len defaults to the model's positions where they are fewer than 128");

    // The same run from scratch starts from a fresh initialization: its first loss is higher.
    const scratch = path.join(root, `scratch-${arch}`), cont = path.join(root, `cont-${arch}`);
    const flags = ['--corpus', text, '--steps', '2', '--batch', '4', '--lr', '1e-3', '--warmup', '0', ...QUIET];
    assert.equal((await kdqat('pretrain', '--out', scratch, ...SIZES[arch], '--vocab', '300', ...flags)).code, 0);
    assert.equal((await kdqat('pretrain', '--out', cont, '--init', base[arch], ...flags)).code, 0);
    const first = (d: string) => readTrainLog(path.join(d, 'train_log.jsonl'))[0].loss;
    assert.ok(first(cont) < first(scratch) - 0.1, `continued ${first(cont)} below from scratch ${first(scratch)}`);
    assert.ok(maxWeightChange(base[arch], cont) > 1e-6, 'a real learning rate moves the weights');
  });
}

it('--init refuses what the model fixes, lengths past its positions, ELECTRA and a missing model', async () => {
  const out = path.join(root, 'refused');
  const r1 = await kdqat('pretrain', '--init', base.bert, '--corpus', text, '--out', out, '--hidden', '64', '--layers', '2');
  assert.equal(r1.code, 2, 'a usage error');
  assert.match(r1.stderr, /--init \S+base-bert: --hidden 64 differs from the model's 32; a continued model keeps its family and sizes: drop these options/);
  const r2 = await kdqat('pretrain', '--init', base.bert, '--corpus', text, '--out', out, '--seq-len', '64');
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--seq-len 64 exceeds --init \S+base-bert's max_position_embeddings 32; use --seq-len 32 or less/);
  const r3 = await kdqat('pretrain', '--init', base.bert, '--corpus', text, '--out', out, '--objective', 'electra');
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /--objective electra trains a new discriminator and generator from scratch/);
  const r4 = await kdqat('pretrain', '--init', path.join(root, 'nothing'), '--corpus', text, '--out', out);
  assert.equal(r4.code, 2);
  assert.match(r4.stderr, /--init \S+nothing: no config\.json there/);
  const r5 = await kdqat('pretrain', '--init', base.llama, '--corpus', text, '--out', out, '--arch', 'bert');
  assert.equal(r5.code, 2);
  assert.match(r5.stderr, /--arch bert differs from the model's llama/);
  // A family kdqat does not pre-train (RoBERTa's masked LM) is named, not trained otherwise.
  const roberta = fileURLToPath(new URL('../fixtures/encoders/roberta/mlm', import.meta.url));
  const r7 = await kdqat('pretrain', '--init', roberta, '--corpus', text, '--out', out);
  assert.equal(r7.code, 2);
  assert.match(r7.stderr, /--init \S+roberta\/mlm: kdqat pretrain continues only the families it can pre-train: --arch roberta: kdqat pretrain does not train RoBERTa/);
  // A fine-tuned classifier has no masked-LM head left to continue.
  const cls = path.join(root, 'cls'), task = path.join(root, 'task.jsonl');
  fs.writeFileSync(task, ['the war and the army', 'the farm and the crop', 'an army at war', 'a crop on the farm']
    .map((t, i) => JSON.stringify({ text: t, label: i % 2 ? 'farm' : 'war' })).join('\n') + '\n');
  const ft = await kdqat('finetune', '--model', base.bert, '--train', task, '--dev', task, '--out', cls, '--steps', '1', '--batch', '2', '--threads', '1');
  assert.equal(ft.code, 0, ft.stderr);
  const r6 = await kdqat('pretrain', '--init', cls, '--corpus', text, '--out', out);
  assert.equal(r6.code, 2);
  assert.match(r6.stderr, /--init \S+cls: is a BERT encoder \(classifier head\), without the masked-LM head pretraining continues; give the pre-trained model it was made from/);
  assert.ok(!fs.existsSync(out), 'nothing written');
});

it('a continued run resumes bit for bit', () => {
  const config: PretrainConfig = {
    ...PRETRAIN_DEFAULTS, ...initDefaults(base.bert, PRETRAIN_DEFAULTS.seq), corpus: [text], steps: 6, batch: 4, lr: 1e-3, warmup: 1,
    evalEvery: 0, saveEvery: 2, logEvery: 1,
  };
  const ref = path.join(root, 'resume-ref'), out = path.join(root, 'resume-crashed');
  runPretrain({ out: ref, config: { ...config }, reporter: silentReporter });
  const crashing: Reporter = { ...silentReporter, step: (s) => { if (s.step === 3) throw new Error('simulated crash'); } };
  assert.throws(() => runPretrain({ out, config: { ...config }, reporter: crashing }), /simulated crash/);
  assert.ok(!fs.existsSync(path.join(out, 'model.safetensors')), 'the crashed run did not finish');
  runPretrain({ out, config: { ...config }, resume: true, reporter: silentReporter });
  const losses = (d: string) => readTrainLog(path.join(d, 'train_log.jsonl')).map((l) => l.loss);
  assert.deepEqual(losses(out), losses(ref));
  assert.equal(maxWeightChange(ref, out), 0, 'the same final weights');
});

it('llama: --init from a model with a chat template takes a corpus of conversations, rendered with it', async () => {
  const chat = path.join(root, 'chat-base-llama');
  fs.cpSync(base.llama, chat, { recursive: true });
  const cfgFile = path.join(chat, 'tokenizer_config.json');
  fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), chat_template: "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}" }));
  const lines = fs.readFileSync(text, 'utf8').split('\n').filter((l) => l.trim()).slice(0, 60);
  const convs = path.join(root, 'convs.jsonl');
  fs.writeFileSync(convs, lines.map((l, i) => JSON.stringify({ messages: [{ role: 'user', content: `Line ${i}?` }, { role: 'assistant', content: l }] })).join('\n') + '\n');
  const out = path.join(root, 'chat-cont-llama');
  const r = await kdqat('pretrain', '--init', chat, '--corpus', convs, '--out', out, '--steps', '1', '--batch', '2', '--seq-len', '16', ...QUIET);
  assert.equal(r.code, 0, r.stderr);
  // Without --init there is no template: the same corpus is refused, naming the line.
  const plain = await kdqat('pretrain', '--arch', 'llama', ...TINY, '--corpus', convs, '--out', path.join(root, 'chat-plain'), '--steps', '1', ...QUIET);
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, /convs\.jsonl:1: this line is a conversation, and the model has no chat template/);
});
