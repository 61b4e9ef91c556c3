// kill -9 anywhere in `kdqat qat`, then the same command with --resume: every file under --out
// ends bitwise equal to an uninterrupted run's (timings aside), with no temp or half-written file
// left. The kill points are named (KDQAT_TEST_KILL_AT, src/io/test-hooks.ts): during a checkpoint
// write, between its two renames, during and after the final write of the student, before the
// summary; plus one at a random moment. Also: a run killed before its first checkpoint is simply
// rerun (no --force), and a full disk (a file-size limit, RLIMIT_FSIZE: write() fails with EFBIG
// as on a full file system with ENOSPC) is a clear error that leaves the last checkpoint intact.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { bertTeacher, llamaTeacher } from '../train/qat-fixture.js';
import { BIN, TINY, sleep, smallTextFile, tmpDir } from './helpers.js';

interface Exit { code: number | null; signal: string | null; stderr: string }

/** `kdqat ...args` in a child process; `killAt` sets KDQAT_TEST_KILL_AT; `fileLimitKb` runs it
 *  under `ulimit -f` (Node ignores SIGXFSZ, so an oversized write fails with EFBIG). */
function run(args: string[], o: { killAt?: string; fileLimitKb?: number; onSpawn?: (kill: () => void) => void } = {}): Promise<Exit> {
  const env = { ...process.env, KDQAT_TEST_KILL_AT: o.killAt ?? '' };
  const child = o.fileLimitKb
    ? spawn('bash', ['-c', `ulimit -f ${o.fileLimitKb}; exec "$0" "$@"`, process.execPath, BIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  o.onSpawn?.(() => child.kill('SIGKILL'));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

/** Every file under `dir`, relative, sorted (dot files included: a leftover temp shows). */
function listFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
    .sort();
}

// Timings (and a reproduction's date) differ between two runs; the byte offset of the log in a checkpoint follows the digits
// of tokens_per_s. Everything else must be equal.
const TIMING = new Set(['tokens_per_s', 'wall_time_s', 'train_tokens_per_s', 'command', 'elapsedSeconds', 'trainSeconds', 'logPosition', 'seconds', 'written']);
const strip = (v: unknown): unknown => Array.isArray(v) ? v.map(strip)
  : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([k]) => !TIMING.has(k)).map(([k, x]) => [k, strip(x)])) : v;

/** Asserts that `out` holds the same files as `ref`, bitwise (timing fields aside). */
function assertSameRun(out: string, ref: string, what: string): void {
  assert.deepEqual(listFiles(out), listFiles(ref), `${what}: the same files, nothing left over`);
  for (const f of listFiles(ref)) {
    const a = fs.readFileSync(path.join(out, f)), b = fs.readFileSync(path.join(ref, f));
    if (f.endsWith('.jsonl')) {
      const lines = (x: Buffer) => x.toString('utf8').split('\n').filter(Boolean).map((l) => strip(JSON.parse(l)));
      assert.deepEqual(lines(a), lines(b), `${what}: ${f}`);
    } else if (/(^|\/)(summary|state|result|results)\.json$/.test(f)) {
      assert.deepEqual(strip(JSON.parse(a.toString('utf8'))), strip(JSON.parse(b.toString('utf8'))), `${what}: ${f}`);
    } else if (f === 'report.html') {
      // A view of results.json and the logs compared here, which also shows the command line (it
      // names --out) and the timings: present in both (the file lists above), content not compared.
    } else if (f === 'results.md') { // names --out in its command line
      const body = (x: Buffer) => x.toString('utf8').replace(/^Command: .*$/m, '');
      assert.equal(body(a), body(b), `${what}: ${f}`);
    } else {
      assert.ok(a.equals(b), `${what}: ${f} differs`);
    }
  }
}

it('kill -9 at named points and at a random moment of kdqat qat, then --resume: all files bitwise equal to an uninterrupted run', async (t) => {
  const root = tmpDir('cli-kill');
  const teacher = llamaTeacher(root);
  // 8 steps, a checkpoint every 2, a log line every 3: the checkpoint of step 4 falls between
  // logged steps 3 and 6, so the resumed run's first cross_rate needs the checkpointed codes.
  const args = (out: string): string[] => ['qat', '--teacher', teacher.dir, '--data', teacher.text, '--quant', 'w4-g32',
    '--steps', '8', '--lr', '1e-3', '--warmup', '1', '--batch', '2', '--seq-len', '16', '--eval-every', '0', '--eval-windows', '2',
    '--log-every', '3', '--save-every', '2', '--threads', '1', '--out', out];
  const ref = path.join(root, 'ref');
  const saved = (o: string): boolean => ['checkpoint', 'checkpoint.old'].some((d) => fs.existsSync(path.join(o, d, 'state.json')));
  const POINTS = [
    'checkpoint:model.safetensors@2',   // during the second checkpoint write (a partial temp dir)
    'checkpoint:moved-old@2',           // between its two renames (only checkpoint.old/)
    'checkpoint:published@2',           // just after it: resumed between two logged steps
    'model-dir:model.safetensors@1',    // during the final write of the student
    'student:written',                  // the student complete in its temp dir, not in place
    'summary',                          // the student in place, no summary yet
  ];
  const outs = POINTS.map((_, i) => path.join(root, `k${i}`));
  const randomOut = path.join(root, 'random');
  let randomKill: (() => void) | null = null;
  const [r0, ...killed] = await Promise.all([
    run(args(ref)),
    ...POINTS.map((p, i) => run(args(outs[i]), { killAt: p })),
    run(args(randomOut), { onSpawn: (k) => { randomKill = k; } }),
    (async () => {
      // A random moment once training has begun (the log exists), within the ~1 s the training
      // steps, checkpoints and the final write take here.
      const log = path.join(randomOut, 'qat_log.jsonl');
      while (!fs.existsSync(log)) await sleep(5);
      await sleep(Math.floor(Math.random() * 800));
      randomKill!();
    })().then(() => ({ code: null, signal: 'timer', stderr: '' })),
  ]);
  assert.equal(r0.code, 0, r0.stderr);
  killed.pop(); // the timer
  const randomExit = killed.pop()!;
  POINTS.forEach((p, i) => assert.equal(killed[i].signal, 'SIGKILL', `${p}: ${killed[i].stderr}`));
  t.diagnostic(`random kill: ${randomExit.signal ?? `exited ${randomExit.code}`}${saved(randomOut) ? '' : ', before the first checkpoint'}`);
  // The state a kill leaves: what is being written has a hidden temp name; every visible name is
  // one an uninterrupted run has too.
  const visible = (d: string) => listFiles(d).filter((f) => !f.split(path.sep).some((part) => part.startsWith('.') && part !== '.kdqat-output'));
  const refFiles = new Set(listFiles(ref));
  [...outs, randomOut].forEach((o) => assert.deepEqual(visible(o).filter((f) => !refFiles.has(f) && !f.startsWith('checkpoint.old')), [], o));
  assert.ok(listFiles(outs[0]).some((f) => f.startsWith('.checkpoint.tmp-')), 'the checkpoint being written is a hidden temp dir');
  assert.ok(listFiles(outs[1]).some((f) => f.startsWith(`checkpoint.old${path.sep}`)) && !fs.existsSync(path.join(outs[1], 'checkpoint')));
  assert.ok(!fs.existsSync(path.join(outs[4], 'student')) && listFiles(outs[4]).some((f) => f.startsWith('.student.tmp-')));

  // The killed segment's time up to its checkpoint (from the start of the command: loading and
  // the baseline evaluations too).
  const segment1 = JSON.parse(fs.readFileSync(path.join(outs[2], 'checkpoint', 'state.json'), 'utf8'));
  assert.equal(segment1.step, 4);
  assert.ok(segment1.elapsedSeconds > segment1.trainSeconds);
  // --resume when a checkpoint was saved; otherwise (the random kill came before the first one)
  // the same command again, which needs no --force.
  const resumed = await Promise.all([...outs, randomOut].map((o) => run(saved(o) ? ['qat', '--out', o, '--resume', '--threads', '1'] : args(o))));
  resumed.forEach((r, i) => assert.equal(r.code, 0, `${POINTS[i] ?? 'random'}: ${r.stderr}`));
  [...outs, randomOut].forEach((o, i) => assertSameRun(o, ref, `killed at ${POINTS[i] ?? 'random'}`));
  // cross_rate: the resumed run's first line after a mid-interval checkpoint has it, as the reference.
  const line6 = JSON.parse(fs.readFileSync(path.join(outs[2], 'qat_log.jsonl'), 'utf8').split('\n')[1]);
  assert.equal(line6.step, 6);
  assert.ok(Object.values(line6.signal.cross_rate as Record<string, (number | null)[]>).flat().every((v) => typeof v === 'number'), 'cross_rate measured');
  // wall_time_s counts the killed segment up to its checkpoint, not only the last segment.
  const s = JSON.parse(fs.readFileSync(path.join(outs[2], 'summary.json'), 'utf8'));
  assert.ok(s.wall_time_s >= Math.round(segment1.elapsedSeconds * 10) / 10, `wall_time_s ${s.wall_time_s} ≥ ${segment1.elapsedSeconds} of the first segment`);
  fs.rmSync(root, { recursive: true });
});

it('a run killed before its first checkpoint is rerun without --force; a full disk is a clear error that keeps the last checkpoint', async () => {
  const root = tmpDir('cli-kill-disk');
  const teacher = llamaTeacher(root);
  const args = (out: string): string[] => ['qat', '--teacher', teacher.dir, '--data', teacher.text, '--quant', 'w4-channel',
    '--steps', '4', '--lr', '1e-3', '--warmup', '1', '--batch', '2', '--seq-len', '16', '--eval-every', '0', '--eval-windows', '2',
    '--log-every', '1', '--save-every', '2', '--threads', '1', '--out', out];
  const ref = path.join(root, 'ref'), early = path.join(root, 'early'), full = path.join(root, 'full');
  const [r0, k1, k2] = await Promise.all([
    run(args(ref)), run(args(early), { killAt: 'checkpoint:optimizer.safetensors@1' }), run(args(full), { killAt: 'checkpoint:published@1' }),
  ]);
  assert.equal(r0.code, 0, r0.stderr);
  assert.equal(k1.signal, 'SIGKILL', k1.stderr);
  assert.equal(k2.signal, 'SIGKILL', k2.stderr);

  // Killed before any checkpoint: nothing to resume, nothing to keep; the same command reruns.
  const rerun = await run(args(early));
  assert.equal(rerun.code, 0, rerun.stderr);
  assertSameRun(early, ref, 'rerun after an early kill');

  // Resumed from the step-2 checkpoint with writes limited to 200 KiB: model.safetensors of the
  // step-4 checkpoint (~160 KB) fits, optimizer.safetensors (twice that) does not.
  const ckpt = path.join(full, 'checkpoint');
  const before = new Map(listFiles(ckpt).map((f) => [f, fs.readFileSync(path.join(ckpt, f))]));
  assert.ok(fs.statSync(path.join(ckpt, 'optimizer.safetensors')).size > 200 * 1024, 'the limit must hit the optimizer file');
  const r = await run(['qat', '--out', full, '--resume', '--threads', '1'], { fileLimitKb: 200 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /kdqat: cannot save the checkpoint of step 4: .*optimizer\.safetensors: no space left while writing it \(EFBIG: the disk is full, or a quota or file-size limit was reached\)/);
  assert.match(r.stderr, /reached\); the previous checkpoint in .*full is intact — free some space and continue from it with --resume\n/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.deepEqual(listFiles(ckpt), [...before.keys()]);
  for (const [f, b] of before) assert.ok(fs.readFileSync(path.join(ckpt, f)).equals(b), `checkpoint/${f} unchanged`);
  assert.deepEqual(listFiles(full).filter((f) => f.startsWith('.')), ['.kdqat-output'], 'no temp file left');
  // With space again, --resume finishes as if nothing had happened.
  const again = await run(['qat', '--out', full, '--resume', '--threads', '1']);
  assert.equal(again.code, 0, again.stderr);
  assertSameRun(full, ref, 'resumed after a full disk');
  fs.rmSync(root, { recursive: true });
});

it('kill -9 during checkpoint writes and the final publish of kdqat pretrain and finetune, then --resume: bitwise equal', async () => {
  const root = tmpDir('cli-kill-pf');
  const text = smallTextFile(root);
  const bert = bertTeacher(root);
  const pretrain = (out: string): string[] => ['pretrain', '--corpus', text, '--out', out, ...TINY, '--vocab', '300', '--steps', '6',
    '--batch', '2', '--warmup', '1', '--eval-every', '3', '--eval-windows', '2', '--save-every', '2', '--log-every', '1', '--threads', '1'];
  const finetune = (out: string): string[] => ['finetune', '--model', bert.dir, '--train', bert.train, '--dev', bert.dev, '--out', out,
    '--max-steps', '6', '--batch', '4', '--max-len', '32', '--lr', '1e-3', '--eval-every', '3', '--save-every', '2', '--log-every', '1',
    '--threads', '1'];
  const cases: [(o: string) => string[], string, string][] = [
    [pretrain, 'ref-p', ''], [pretrain, 'p-ckpt', 'checkpoint:optimizer.safetensors@2'], [pretrain, 'p-publish', 'publish:file@2'],
    [finetune, 'ref-f', ''], [finetune, 'f-old', 'checkpoint:moved-old@2'], [finetune, 'f-publish', 'publish:file@2'],
  ];
  const first = await Promise.all(cases.map(([cmd, name, killAt]) => run(cmd(path.join(root, name)), { killAt })));
  cases.forEach(([, name, killAt], i) => {
    if (killAt) assert.equal(first[i].signal, 'SIGKILL', `${name}: ${first[i].stderr}`);
    else assert.equal(first[i].code, 0, `${name}: ${first[i].stderr}`);
  });
  const killed = cases.filter(([, , k]) => k);
  const resumed = await Promise.all(killed.map(([cmd, name]) => run([cmd('')[0], '--out', path.join(root, name), '--resume', '--threads', '1'])));
  resumed.forEach((r, i) => assert.equal(r.code, 0, `${killed[i][1]}: ${r.stderr}`));
  for (const [cmd, name] of killed) {
    assertSameRun(path.join(root, name), path.join(root, cmd === pretrain ? 'ref-p' : 'ref-f'), name);
  }
  fs.rmSync(root, { recursive: true });
});

it('kdqat quantize killed while writing the student: no --out appears, and the rerun (no --force) removes the dead temp directory', async () => {
  const root = tmpDir('cli-kill-quant');
  const teacher = llamaTeacher(root);
  const out = path.join(root, 'rtn');
  const args = ['quantize', '--model', teacher.dir, '--quant', 'w4-channel', '--out', out];
  const k = await run(args, { killAt: 'model-dir:model.safetensors' });
  assert.equal(k.signal, 'SIGKILL', k.stderr);
  assert.ok(!fs.existsSync(out), 'nothing under the final name');
  assert.equal(fs.readdirSync(root).filter((f) => f.startsWith('.rtn.tmp-')).length, 1, 'the partial student is a hidden temp dir');
  const r = await run(args);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(root).filter((f) => f.startsWith('.')), [], 'the dead writer\'s temp dir is gone');
  fs.rmSync(root, { recursive: true });
});

it('kdqat reproduce killed during a KD-QAT run\'s student write, then rerun: the same files as an uninterrupted reproduction', async () => {
  const root = tmpDir('cli-kill-repro');
  const teacher = llamaTeacher(root);
  const args = (out: string): string[] => ['reproduce', 'ov-freeze', '--quick', '--teacher', teacher.dir, '--out', out,
    '--only', 'qat-w4-channel', '--seeds', '1', '--threads', '1'];
  const ref = path.join(root, 'ref'), out = path.join(root, 'killed');
  const [r0, k] = await Promise.all([run(args(ref)), run(args(out), { killAt: 'student:written' })]);
  assert.equal(r0.code, 0, r0.stderr);
  assert.equal(k.signal, 'SIGKILL', k.stderr);
  assert.ok(!fs.existsSync(path.join(out, 'results.json')));
  // A reproduction continues by running the same command (finished runs are kept).
  const again = await run(args(out));
  assert.equal(again.code, 0, again.stderr);
  assertSameRun(out, ref, 'reproduce');
  fs.rmSync(root, { recursive: true });
});
