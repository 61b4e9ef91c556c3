// `kdqat qat` end to end on a tiny random teacher: options, help, the student directory that
// `kdqat eval` loads, --resume keeping the saved settings, --config files.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runEval, type Output } from '../../src/cli/eval.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { bertTeacher, llamaTeacher } from '../train/qat-fixture.js';
import { kdqat, tmpDir } from './helpers.js';

const quiet: Output = { stdout: () => {}, stderr: () => {}, isTTY: false };

it('kdqat qat --help lists the options and examples', async () => {
  const write = process.stdout.write;
  let text = '';
  process.stdout.write = ((c: string) => { text += c; return true; }) as typeof process.stdout.write;
  try { await kdqat('qat', '--help'); } finally { process.stdout.write = write; }
  for (const flag of ['--teacher', '--data', '--task', '--quant', '--loss', '--tau', '--freeze', '--steps', '--lr', '--warmup', '--batch',
    '--seq-len', '--accumulate', '--clip', '--eval-every', '--log-every', '--save-every', '--seed', '--threads', '--out', '--force',
    '--resume', '--config', '--cache-teacher', '--freeze-probe-steps', '--int8-grad']) assert.ok(text.includes(flag), flag);
  assert.match(text, /Examples:[\s\S]*--freeze ov/);
});

it('kdqat qat writes a student that kdqat eval loads (quantized and latent weights differ); --resume keeps the settings', async () => {
  const root = tmpDir('cli-qat');
  const teacher = llamaTeacher(root);
  const out = path.join(root, 'run');
  const args = ['qat', '--teacher', teacher.dir, '--data', teacher.text, '--quant', 'w4-g32', '--loss', 'pred=1,rep=0.5',
    '--freeze', 'ov', '--steps', '4', '--lr', '1e-3', '--warmup', '1', '--batch', '4', '--seq-len', '32', '--eval-every', '2',
    '--eval-windows', '2', '--log-every', '1', '--save-every', '2', '--threads', '1', '--out', out];
  const r = await kdqat(...args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /done: 4 steps .* valid_ppl: teacher [\d.]+, RTN [\d.]+, KD-QAT [\d.]+/);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.config.quant, 'w4-g32');
  // --int8-grad auto (the default) resolves, says to what, and the run records it (on with the
  // integer GEMMs: at this width every group of 32 is a whole row, a per-channel grid).
  const i8 = /--int8-grad auto: (on|off) \(/.exec(r.stderr);
  assert.ok(i8, r.stderr);
  assert.equal(summary.config.int8Grad, i8[1] === 'on');
  assert.equal(summary.config.teacher, teacher.dir);
  assert.equal(readTrainLog(path.join(out, 'qat_log.jsonl')).length, 4);
  // The fraction recovered exists only where RTN lost perplexity, and then says so.
  const [tp, rp, qp] = [summary.teacher.valid_ppl, summary.rtn.valid_ppl, summary.final.valid_ppl];
  if (rp > tp) {
    assert.ok(Math.abs(summary.recovered - (rp - qp) / (rp - tp)) <= 1e-12 * Math.abs(summary.recovered), String(summary.recovered));
    assert.match(r.stderr, /recovered -?[\d.]+% of what RTN lost/);
  } else {
    assert.equal(summary.recovered, null);
    assert.match(r.stderr, /RTN lost nothing to recover/);
  }

  const student = path.join(out, 'student');
  const q = await runEval({ model: student, text: [teacher.text], json: true, seq: '32' }, quiet);
  const latent = await runEval({ model: student, text: [teacher.text], json: true, seq: '32', latent: true }, quiet);
  const ppl = (rep: typeof q): number => (rep.results[0] as unknown as { ppl: number }).ppl;
  assert.equal(q.arch, 'llama');
  assert.ok(Number.isFinite(ppl(q)) && Number.isFinite(ppl(latent)));
  assert.notEqual(ppl(q), ppl(latent), 'the student evaluates its quantized weights, not the latent ones');

  // The log is what `kdqat plot` reads.
  const figs = path.join(root, 'figs');
  const plot = await kdqat('plot', '--log', path.join(out, 'qat_log.jsonl'), '--out', figs, '--no-png');
  assert.equal(plot.code, 0, plot.stderr);
  assert.ok(fs.readdirSync(figs).some((f) => f.endsWith('.svg')));

  // An existing run: not replaced without --force; a resumed run keeps its settings.
  const again = await kdqat(...args);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists and is not empty; use --force/);
  const changed = await kdqat('qat', '--out', out, '--resume', '--lr', '5e-4');
  assert.equal(changed.code, 2, 'a usage error');
  assert.match(changed.stderr, /--resume: --lr 0.0005 differs from the checkpoint's 0.001/);
  const flip = await kdqat('qat', '--out', out, '--resume', '--int8-grad', summary.config.int8Grad ? 'off' : 'on');
  assert.equal(flip.code, 2, 'a usage error');
  assert.match(flip.stderr, new RegExp(`--resume: --int8-grad ${!summary.config.int8Grad} differs from the checkpoint's ${summary.config.int8Grad}`));
  // auto again is what it resolved to.
  const resumed = await kdqat('qat', '--out', out, '--resume', '--int8-grad', 'auto', '--threads', '1');
  assert.equal(resumed.code, 0, resumed.stderr);

  // --config: the same keys as the flags.
  const cfg = path.join(root, 'qat.json');
  fs.writeFileSync(cfg, JSON.stringify({ teacher: teacher.dir, data: teacher.text, steps: 2, 'seq-len': 32, batch: 4, 'save-every': 0, 'eval-every': 0, 'eval-windows': 2,
    quant: 'w4-channel', 'int8-grad': 'off' }));
  const c = await kdqat('qat', '--config', cfg, '--out', path.join(root, 'from-config'), '--threads', '1');
  assert.equal(c.code, 0, c.stderr);
  assert.doesNotMatch(c.stderr, /--int8-grad/);
  assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'from-config', 'summary.json'), 'utf8')).config.int8Grad, false);
  const maybe = await kdqat('qat', '--teacher', teacher.dir, '--data', teacher.text, '--int8-grad', 'maybe', '--out', path.join(root, 'maybe'));
  assert.equal(maybe.code, 2, 'a usage error');
  assert.match(maybe.stderr, /--int8-grad must be auto, on or off, got "maybe"/);
  const bad = await kdqat('qat', '--teacher', teacher.dir, '--data', teacher.text, '--quant', 'w4-g24', '--out', path.join(root, 'bad'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--quant w4-g24: neither a preset/);
  assert.ok(!fs.existsSync(path.join(root, 'bad')));
  fs.rmSync(root, { recursive: true });
});

it('kdqat qat --freeze auto from a --config file: the probe writes freeze_auto.json; --resume with the same settings does not probe again', async () => {
  const root = tmpDir('cli-qat-auto');
  const teacher = llamaTeacher(root);
  const out = path.join(root, 'run');
  const cfg = path.join(root, 'auto.json');
  fs.writeFileSync(cfg, JSON.stringify({ teacher: teacher.dir, data: teacher.text, freeze: 'auto', 'freeze-probe-steps': 3, steps: 4, 'seq-len': 32, batch: 4, 'save-every': 2, 'eval-every': 0, 'eval-windows': 2 }));
  const r = await kdqat('qat', '--config', cfg, '--out', out, '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /--freeze auto: probed 14 modules in 3 steps \+ 8 curvature vectors/);
  const rec = JSON.parse(fs.readFileSync(path.join(out, 'freeze_auto.json'), 'utf8'));
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.config.freeze, rec.patterns.join(','));
  assert.equal(summary.config.freezeAuto, 'auto');
  assert.equal(summary.config.freezeProbeSteps, 3);
  // The same command with --resume: the checkpoint holds the chosen patterns; no second probe.
  const resumed = await kdqat('qat', '--config', cfg, '--out', out, '--threads', '1', '--resume');
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.doesNotMatch(resumed.stderr, /--freeze auto: probed/);
  const other = await kdqat('qat', '--out', out, '--resume', '--freeze', 'ov');
  assert.equal(other.code, 2); // a usage error (docs/cli.md)
  assert.match(other.stderr, /--resume: --freeze "ov" differs from the checkpoint's/);
  const bad = await kdqat('qat', '--config', cfg, '--freeze', 'auto:0.5', '--out', path.join(root, 'bad'));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--freeze auto:0\.5: the ratio in auto:R must be a number > 1/);
  fs.rmSync(root, { recursive: true });
});

it('kdqat qat --data takes several corpora (a text file and a Parquet file, relative paths), stored absolute for --resume', async () => {
  const root = tmpDir('cli-qat-multi');
  const teacher = llamaTeacher(root);
  const pq = new URL('../fixtures/data/parquet/text-snappy.parquet', import.meta.url).pathname;
  fs.copyFileSync(pq, path.join(root, 'more.parquet'));
  const rel = path.relative(process.cwd(), path.join(root, 'more.parquet'));
  const out = path.join(root, 'run');
  const r = await kdqat('qat', '--teacher', teacher.dir, '--data', `${teacher.text},${rel}`, '--quant', 'w4-g32', '--steps', '1', '--batch', '2',
    '--seq-len', '16', '--eval-every', '0', '--threads', '1', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.config.data, `${path.resolve(teacher.text)},${path.join(root, 'more.parquet')}`);
  fs.rmSync(root, { recursive: true, force: true });
});

it('kdqat qat --task FILE with its own field names (--text-field / --label-field)', async () => {
  const root = tmpDir('cli-qat-fields');
  const teacher = bertTeacher(root);
  // The teacher's task files rewritten with other names: {"review", "sentiment"}.
  const rename = (f: string): string => {
    const out = path.join(root, `renamed-${path.basename(f)}`);
    const lines = fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { text: string; label: string });
    fs.writeFileSync(out, lines.map((o) => JSON.stringify({ review: o.text, sentiment: o.label })).join('\n') + '\n');
    return out;
  };
  const out = path.join(root, 'run');
  const r = await kdqat('qat', '--teacher', teacher.dir, '--task', rename(teacher.train), '--dev', rename(teacher.dev), '--text-field', 'review',
    '--label-field', 'sentiment', '--quant', 'twn', '--steps', '1', '--batch', '2', '--seq-len', '16', '--eval-every', '0', '--threads', '1', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.deepEqual([summary.config.textField, summary.config.labelField], ['review', 'sentiment']);
  const bad = await kdqat('qat', '--teacher', teacher.dir, '--task', rename(teacher.train), '--dev', rename(teacher.dev), '--quant', 'twn', '--steps', '1', '--out', path.join(root, 'run2'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /missing field "text" .*--text-field/);
  fs.rmSync(root, { recursive: true, force: true });
});
