// The command-line contract shared by every command (docs/cli.md): one vocabulary of flags whose
// older spellings still work (on the command line and in --config files) and resolve to the same
// settings; --json prints one JSON object on stdout; exit status 0 / 1 (run time) / 2 (usage).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { FLAG_VOCABULARY, keyAliases } from '../../src/cli/flags.js';
import { givenOptions, readConfigFile, resolveSettings } from '../../src/cli/options.js';
import { pretrainCommand } from '../../src/cli/pretrain.js';
import { finetuneCommand } from '../../src/cli/finetune.js';
import { qatCommand } from '../../src/cli/qat.js';
import { evalCommand } from '../../src/cli/eval.js';
import { reproduceCommand } from '../../src/cli/reproduce.js';
import { demoCommand } from '../../src/cli/demo.js';
import { PRETRAIN_DEFAULTS } from '../../src/train/pretrain.js';
import { FINETUNE_DEFAULTS } from '../../src/train/finetune.js';
import { QAT_DEFAULTS } from '../../src/train/qat.js';
import { bertTeacher, llamaTeacher } from '../train/qat-fixture.js';
import { BIN, kdqat, tmpDir } from './helpers.js';

/** Parses `args` with `make()`'s command, its action replaced: the options and their sources. */
function parsed(make: () => Command, args: string[], sub?: string): { cmd: Command; opts: Record<string, unknown> } {
  let cmd = make();
  if (sub) cmd = cmd.commands.find((c) => c.name() === sub)!;
  if (cmd.name() === 'eval') args = ['--model', 'm', ...args]; // its one required option
  let opts: Record<string, unknown> | null = null;
  cmd.exitOverride().action(function (this: Command) { opts = { ...this.opts() }; });
  cmd.parse(args, { from: 'user' });
  assert.ok(opts, `${args.join(' ')}: the action ran`);
  return { cmd, opts };
}

const COMMANDS: { name: string; make: () => Command; sub?: string; defaults?: object }[] = [
  { name: 'pretrain', make: pretrainCommand, defaults: PRETRAIN_DEFAULTS },
  { name: 'finetune', make: finetuneCommand, defaults: FINETUNE_DEFAULTS },
  { name: 'qat', make: qatCommand, defaults: QAT_DEFAULTS },
  { name: 'eval', make: evalCommand },
  { name: 'reproduce ov-freeze', make: reproduceCommand, sub: 'ov-freeze' },
  { name: 'reproduce attn-kd', make: reproduceCommand, sub: 'attn-kd' },
  { name: 'demo', make: demoCommand },
];

it('every older spelling resolves to the same settings as the canonical flag, in every command that has it', () => {
  let checked = 0;
  for (const c of COMMANDS) {
    const probe = c.sub ? c.make().commands.find((x) => x.name() === c.sub)! : c.make();
    const longs = new Set(probe.options.map((o) => o.long));
    for (const f of FLAG_VOCABULARY) {
      if (!longs.has(`--${f.canonical}`)) continue;
      const canon = parsed(c.make, [`--${f.canonical}`, '7'], c.sub);
      // The canonical flag is visible in the help, the aliases are not.
      const help = canon.cmd.helpInformation();
      assert.ok(help.includes(`--${f.canonical} `), `${c.name}: --${f.canonical} in the help`);
      for (const alias of f.aliases) {
        assert.ok(longs.has(`--${alias}`), `${c.name}: --${alias} accepted`);
        assert.ok(!help.includes(`--${alias} `), `${c.name}: --${alias} hidden from the help`);
        const old = parsed(c.make, [`--${alias}`, '7'], c.sub);
        assert.deepEqual(old.opts, canon.opts, `${c.name} --${alias} 7 ≡ --${f.canonical} 7`);
        if (c.defaults) {
          // What the command's action resolves (defaults ← flags the user gave).
          const keys = Object.keys(c.defaults);
          const a = resolveSettings(c.defaults, {}, givenOptions(old.cmd, keys));
          const b = resolveSettings(c.defaults, {}, givenOptions(canon.cmd, keys));
          assert.deepEqual(a, b, `${c.name}: resolved settings`);
          assert.notDeepEqual(b, c.defaults, `${c.name} --${f.canonical}: the flag changed a setting`);
        }
        checked++;
      }
    }
  }
  // seq-len ×2 aliases in pretrain, finetune, qat, eval, 2 reproductions; batch, steps, …
  assert.ok(checked >= 25, `${checked} alias checks`);
});

it('the aliases map to the settings keys each command has always used (checkpoints and summaries unchanged)', () => {
  const keyOf = (make: () => Command, flag: string): string[] => {
    const { opts } = parsed(make, [flag, '9']);
    return Object.entries(opts).filter(([, v]) => v === 9).map(([k]) => k);
  };
  assert.deepEqual(keyOf(pretrainCommand, '--seq-len'), ['seq']);
  assert.deepEqual(keyOf(pretrainCommand, '--accumulate'), ['accum']);
  assert.deepEqual(keyOf(finetuneCommand, '--seq-len'), ['maxLen']);
  assert.deepEqual(keyOf(finetuneCommand, '--steps'), ['maxSteps']);
  assert.deepEqual(keyOf(qatCommand, '--seq'), ['seqLen']);
  assert.deepEqual(keyOf(qatCommand, '--accum'), ['accumulate']);
  assert.deepEqual(parsed(evalCommand, ['--batch', '3', '--eval-items', '5', '--seq-len', '16']).opts,
    { model: 'm', batchSize: '3', limit: '5', seq: '16', split: 'test', pplConvention: 'kdqat' });
  // Two spellings of one option at once: refused, whichever comes first.
  for (const args of [['--seq', '8', '--seq-len', '8'], ['--seq-len', '8', '--max-len', '8']]) {
    assert.throws(() => parsed(pretrainCommand, args), /are the same option \(--seq-len\); give it once/);
  }
});

it('--config files accept every spelling of a key, and refuse two spellings of one', () => {
  const root = tmpDir('flags-config');
  const read = (make: () => Command, defaults: object, json: object): Record<string, unknown> => {
    const file = path.join(root, 'c.json');
    fs.writeFileSync(file, JSON.stringify(json));
    return readConfigFile(file, { ...defaults, out: '', threads: 0 } as never, keyAliases(make()));
  };
  for (const k of ['seq', 'seq-len', 'seqLen', 'seq_len', 'max-len']) assert.deepEqual(read(pretrainCommand, PRETRAIN_DEFAULTS, { [k]: 32 }), { seq: 32 }, k);
  for (const k of ['accum', 'accumulate']) assert.deepEqual(read(pretrainCommand, PRETRAIN_DEFAULTS, { [k]: 2 }), { accum: 2 }, k);
  for (const k of ['max-len', 'seq-len', 'seq']) assert.deepEqual(read(finetuneCommand, FINETUNE_DEFAULTS, { [k]: 64 }), { maxLen: 64 }, k);
  for (const k of ['max-steps', 'steps']) assert.deepEqual(read(finetuneCommand, FINETUNE_DEFAULTS, { [k]: 5 }), { maxSteps: 5 }, k);
  for (const k of ['seq', 'seq-len', 'max-len']) assert.deepEqual(read(qatCommand, QAT_DEFAULTS, { [k]: 16 }), { seqLen: 16 }, k);
  for (const k of ['accum', 'accumulate']) assert.deepEqual(read(qatCommand, QAT_DEFAULTS, { [k]: 2 }), { accumulate: 2 }, k);
  assert.throws(() => read(qatCommand, QAT_DEFAULTS, { seq: 16, 'seq-len': 16 }), /"seq" and "seq-len" are the same setting; give it once/);
  fs.rmSync(root, { recursive: true });
});

it('an error about a --config key names it as the file spells it (and the flag), and lists the known keys as flags', async () => {
  const root = tmpDir('flags-config-errors');
  const cfg = (json: object): string => {
    const file = path.join(root, `c${Object.keys(json).join('')}.json`);
    fs.writeFileSync(file, JSON.stringify(json));
    return file;
  };
  const cases: [object, RegExp][] = [
    [{ maxLen: 0 }, /key "maxLen" \(--seq-len\): must be at least 1, got 0; fix it in /],
    [{ 'seq-len': 0 }, /key "seq-len": must be at least 1, got 0; fix it in /],
    [{ max_steps: -1 }, /key "max_steps" \(--steps\): must be an integer ≥ 0, got -1; fix it in /],
  ];
  for (const [json, want] of cases) {
    const file = cfg(json);
    const r = await kdqat('finetune', '--model', path.join(root, 'm'), '--train', 'x.jsonl', '--dev', 'x.jsonl', '--config', file, '--out', path.join(root, 'o'));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, want);
    assert.ok(r.stderr.includes(file), r.stderr);
  }
  const r = await kdqat('finetune', '--model', path.join(root, 'm'), '--config', cfg({ epoch: 1 }), '--out', path.join(root, 'o'));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown key "epoch"; known keys: .*\bepochs\b.*\bseq-len\b.*\bsteps\b/);
  assert.doesNotMatch(r.stderr, /max-len|max-steps/);
});

/** Runs `node bin/kdqat.js …args` (tsx, as the installed command does). */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KDQAT_THREADS: '1' } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs the commands two at a time (the machine has 2 cores). */
async function runAll(cases: string[][]): Promise<{ code: number | null; stdout: string; stderr: string }[]> {
  const out: { code: number | null; stdout: string; stderr: string }[] = [];
  for (let i = 0; i < cases.length; i += 2) out.push(...await Promise.all(cases.slice(i, i + 2).map(run)));
  return out;
}

it('exit status: 2 for usage errors, 1 for failures at run time, 0 for success and --help', async () => {
  const root = tmpDir('flags-exit');
  const teacher = llamaTeacher(root);
  const bert = bertTeacher(root);
  const out = (n: string): string => path.join(root, n);
  // [args, status, message, spawned]: one of each kind runs as the installed command does (a
  // child process of bin/kdqat.js), the rest through main() in this process (the same code,
  // without paying for a process start each).
  const cases: [string[], number, RegExp, boolean][] = [
    // unknown flag
    [['pretrain', '--bogus'], 2, /unknown option '--bogus'/, true],
    [['qat', '--teacher', teacher.dir, '--frobnicate', '--out', out('a')], 2, /unknown option '--frobnicate'/, false],
    [['eval', '--model', teacher.dir, '--lmit', '3'], 2, /unknown option '--lmit'/, false],
    // missing required flag
    [['qat', '--teacher', teacher.dir, '--data', teacher.text], 2, /--out is required/, true],
    [['pretrain', '--corpus', teacher.text], 2, /--out is required/, false],
    [['finetune', '--model', bert.dir, '--train', bert.train, '--dev', bert.dev], 2, /--out is required/, false],
    [['quantize', '--model', teacher.dir, '--quant', 'q4_0'], 2, /required option '--out <dir>' not specified/, false],
    [['qat', '--data', teacher.text, '--out', out('b')], 2, /--teacher DIR is required/, false],
    // bad value
    [['qat', '--teacher', teacher.dir, '--data', teacher.text, '--steps', '0', '--out', out('d')], 2, /--steps must be a positive integer, got 0/, true],
    [['pretrain', '--steps', 'many', '--out', out('c')], 2, /--steps <n>' argument 'many' is invalid/, false],
    [['finetune', '--model', bert.dir, '--train', bert.train, '--dev', bert.dev, '--seq-len', '0', '--out', out('e')], 2, /--seq-len must be at least 1, got 0/, false],
    [['eval', '--model', teacher.dir, '--text', teacher.text, '--batch', '0'], 2, /--batch must be an integer ≥ 1, got "0"/, false],
    [['qat', '--teacher', teacher.dir, '--data', teacher.text, '--recompute', 'some', '--out', out('k')], 2, /--recompute must be one of off, selective, all \(a bare --recompute is all\), got "some"/, false],
    // conflicting flags
    [['qat', '--teacher', teacher.dir, '--seq', '16', '--seq-len', '32', '--out', out('f')], 2, /--seq-len and --seq are the same option/, true],
    [['finetune', '--model', bert.dir, '--task', 'brown-genre', '--train', bert.train, '--out', out('g')], 2, /give either --task or --train\/--dev\/--test, not both/, false],
    // failures at run time: an input that is not there
    [['qat', '--teacher', out('no-teacher'), '--data', teacher.text, '--out', out('h')], 1, /--teacher .*no-teacher: no such directory/, true],
    [['finetune', '--model', out('no-model'), '--task', 'brown-genre', '--out', out('i')], 1, /no-model/, false],
    [['eval', '--model', out('no-model'), '--text', teacher.text], 1, /no-model/, false],
    [['pretrain', '--corpus', out('no-text.txt'), '--out', out('j')], 1, /--corpus .*no-text\.txt: not a built-in corpus/, false],
    // success
    [['--help'], 0, /Exit status: 0 success; 1 failure at run time/, true],
    [['qat', '--help'], 0, /Exit status: 0 success/, true],
  ];
  const spawned = await runAll(cases.filter((c) => c[3]).map(([a]) => a));
  for (const [args, code, message, child] of cases) {
    const r = child ? spawned.shift()! : { ...(await kdqat(...args)), stdout: '' };
    assert.equal(r.code, code, `kdqat ${args.join(' ')}: ${r.stderr}`);
    assert.match(code === 0 ? r.stdout : r.stderr, message, args.join(' '));
  }
  // Nothing was left behind by the refused runs.
  for (const n of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k']) assert.ok(!fs.existsSync(out(n)), n);
  fs.rmSync(root, { recursive: true });
});

it('--json: one JSON object on stdout (the summary), progress on stderr; older spellings run the same', async () => {
  const root = tmpDir('flags-json');
  const teacher = llamaTeacher(root);
  const bert = bertTeacher(root);
  const qat = (out: string, ...flags: string[]): string[] => ['qat', '--teacher', teacher.dir, '--data', teacher.text, '--lr', '1e-3',
    '--warmup', '1', '--eval-every', '0', '--eval-windows', '2', '--save-every', '0', '--threads', '1', '--out', path.join(root, out), '--json', ...flags];
  const [canon, old] = await runAll([
    qat('canon', '--steps', '2', '--batch', '2', '--seq-len', '16', '--accumulate', '2'),
    qat('old', '--max-steps', '2', '--batch-size', '2', '--seq', '16', '--accum', '2'),
  ]);
  for (const r of [canon, old]) assert.equal(r.code, 0, r.stderr);
  const a = JSON.parse(canon.stdout), b = JSON.parse(old.stdout);
  assert.equal(a.steps, 2);
  assert.equal(a.config.seqLen, 16);
  assert.equal(a.config.accumulate, 2);
  assert.ok(Number.isFinite(a.final.valid_ppl) && Number.isFinite(a.rtn.valid_ppl), 'the summary\'s metrics');
  assert.deepEqual(a, JSON.parse(fs.readFileSync(path.join(root, 'canon', 'summary.json'), 'utf8')), 'stdout is summary.json');
  // The same run under either spelling: settings, losses and metrics equal (timings aside).
  const same = (s: Record<string, unknown>): unknown => ({ ...s, wall_time_s: 0, train_tokens_per_s: 0, command: [] });
  assert.deepEqual(same(b), same(a));
  assert.match(canon.stderr, /done: 2 steps/);

  const [pre, ft] = await runAll([
    ['pretrain', '--corpus', teacher.text, '--hidden', '32', '--layers', '1', '--heads', '4', '--kv-heads', '2', '--intermediate', '64',
      '--seq-len', '32', '--vocab', '300', '--steps', '2', '--batch', '2', '--eval-every', '0', '--eval-windows', '2', '--save-every', '0',
      '--threads', '1', '--out', path.join(root, 'pre'), '--json'],
    ['finetune', '--model', bert.dir, '--train', bert.train, '--dev', bert.dev, '--steps', '2', '--batch', '8', '--seq-len', '24',
      '--threads', '1', '--out', path.join(root, 'ft'), '--json'],
  ]);
  for (const r of [pre, ft]) assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(pre.stdout), f = JSON.parse(ft.stdout);
  assert.equal(p.steps, 2);
  assert.equal(p.config.seq, 32);
  assert.ok(p.tokens_seen > 0 && typeof p.final === 'object');
  assert.equal(f.steps, 2);
  assert.deepEqual(f.labels, ['neg', 'pos']);
  assert.ok(f.best_dev_accuracy >= 0 && f.best_dev_accuracy <= 1);

  const [exp, plot] = await runAll([
    ['export', '--model', teacher.dir, '--format', 'safetensors', '--out', path.join(root, 'exported'), '--json'],
    ['plot', '--log', path.join(root, 'canon', 'qat_log.jsonl'), '--out', path.join(root, 'figs'), '--no-png', '--json'],
  ]);
  for (const r of [exp, plot]) assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(exp.stdout).out, path.join(root, 'exported'));
  const files: string[] = JSON.parse(plot.stdout).files;
  assert.ok(files.length > 0 && files.every((x) => fs.existsSync(x)), 'plot lists the files it wrote');
  fs.rmSync(root, { recursive: true });
});
