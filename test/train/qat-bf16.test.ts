// `kdqat qat --bf16`: a bad mode is an error; where AVX512_BF16 runs, 'teacher', 'layers' and 'all' train
// (the setting is recorded in the run's config, so --resume keeps it) and change the numbers
// (the GEMMs really ran in bf16); where it cannot run they are refused naming the flag and the
// missing CPU feature, before anything is written (never a silent float32 fallback). 'auto', the
// default, is the run of the mode it resolves to on this CPU ('layers' with AVX512_BF16, 'off'
// without), recorded as that mode; a checkpoint in bf16 resumed where bf16 cannot run is refused.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { QAT_DEFAULTS, runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { bf16Unavailable, getThreads } from '../../src/backend/index.js';
import type { Reporter } from '../../src/train/loop.js';
import { BIN } from '../cli/helpers.js';
import { decoderConfig, llamaTeacher, silentReporter, tmpDir } from './qat-fixture.js';

const lossesOf = (out: string): number[] => fs.readFileSync(path.join(out, 'qat_log.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l)).filter((r) => r.loss !== undefined).map((r) => r.loss.total as number);
const stateOf = (out: string): { config: { bf16: string } } =>
  JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
/** Every file under dir with its bytes (to show a refused resume changed nothing). */
const snapshot = (dir: string): Map<string, string> => new Map(fs.readdirSync(dir, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile()).map((e) => {
    const f = path.join(e.parentPath, e.name);
    return [path.relative(dir, f), fs.readFileSync(f).toString('base64')];
  }));

it('--bf16 must be auto, off, teacher, layers or all; auto is the default', () => {
  assert.equal(QAT_DEFAULTS.bf16, 'auto');
  const root = tmpDir('qat-bf16-bad');
  const teacher = llamaTeacher(root);
  assert.throws(() => runQat({ out: path.join(root, 'out'), config: decoderConfig(teacher, { bf16: 'half' }), reporter: silentReporter }),
    /--bf16 must be one of auto, off, teacher, layers, all, got "half"/);
  fs.rmSync(root, { recursive: true });
});

// --bf16 auto keeps float32 on an Intel CPU whose bf16 GEMM is AVX512_BF16 alone (slower than
// float32 there): decided from /proc/cpuinfo's vendor and AMX flags and KDQAT_AMX, not the addon.
function autoDeclines(): boolean {
  let cpuinfo = '';
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return false;  // not Linux: no independent answer
  }
  const intel = /^vendor_id\s*:\s*GenuineIntel$/m.test(cpuinfo);
  const flags = (cpuinfo.match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/);
  const amx = ['amx_tile', 'amx_bf16', 'amx_int8'].every((f) => flags.includes(f)) && process.env.KDQAT_AMX !== 'off';
  return intel && !amx;
}

it('--bf16 teacher|layers|all trains where AVX512_BF16 runs, and is refused (naming the flag and avx512_bf16) elsewhere; auto runs the mode it resolves to', () => {
  const root = tmpDir('qat-bf16');
  const teacher = llamaTeacher(root);
  const why = bf16Unavailable();
  const over = { steps: 4, evalEvery: 0, saveEvery: 2 };
  const losses: Record<string, number[]> = {};
  if (why) {
    for (const mode of ['teacher', 'layers', 'all']) {
      const out = path.join(root, `out-${mode}`);
      assert.throws(() => runQat({ out, config: decoderConfig(teacher, { ...over, bf16: mode }), reporter: silentReporter }),
        (e: Error) => e.message.startsWith(`--bf16 ${mode}: `) && e.message.includes('avx512_bf16') && e.message.includes(why));
      assert.ok(!fs.existsSync(out), 'nothing written');
    }
  }
  // auto last: it must be the run of the mode it resolved to, bit for bit.
  for (const mode of why ? ['off', 'auto'] : ['off', 'teacher', 'layers', 'all', 'auto']) {
    const out = path.join(root, `out-${mode}`);
    const s = runQat({ out, config: decoderConfig(teacher, { ...over, bf16: mode }), reporter: silentReporter });
    const used = mode === 'auto' ? (why || autoDeclines() ? 'off' : 'layers') : mode;
    assert.equal(s.config.bf16, used);
    assert.ok(fs.existsSync(path.join(out, STUDENT_DIR)));
    assert.equal(stateOf(out).config.bf16, used, 'recorded in the checkpoint for --resume');
    losses[mode] = lossesOf(out);
    assert.ok(losses[mode].length > 0 && losses[mode].every(Number.isFinite), `${mode}: ${losses[mode]}`);
  }
  assert.deepEqual(losses.auto, losses[why || autoDeclines() ? 'off' : 'layers'], 'auto is the run of the mode it resolved to');
  if (!why) {
    // bf16 GEMMs round their inputs to 8 significant bits: the losses must move.
    assert.notDeepEqual(losses.teacher, losses.off);
    assert.notDeepEqual(losses.layers, losses.teacher);
    // layers is all with the student's LM head (logits KL, forward and backward) in float32.
    assert.notDeepEqual(losses.all, losses.layers);
  }
  fs.rmSync(root, { recursive: true });
});

it('a run in bf16 resumed where bf16 cannot run is refused, changing nothing; --resume --bf16 auto continues it bitwise', () => {
  const root = tmpDir('qat-bf16-resume');
  const teacher = llamaTeacher(root);
  const why = bf16Unavailable();
  // bf16: auto, the default; 'layers' given where bf16 runs but auto declines it (slower here).
  const config = decoderConfig(teacher, { steps: 6, evalEvery: 0, saveEvery: 2, ...(!why && autoDeclines() ? { bf16: 'layers' } : {}) });
  const ref = path.join(root, 'ref'), out = path.join(root, 'crashed');
  runQat({ out: ref, config, reporter: silentReporter });
  const crashing: Reporter = { ...silentReporter, step: (s) => { if (s.step === 3) throw new Error('simulated crash'); } };
  assert.throws(() => runQat({ out, config, reporter: crashing }), /simulated crash/);
  const refusal = (mode: string) => (m: string): boolean => m.includes(`--resume: the run in ${out} computes GEMMs in bf16 (bf16 "${mode}" in its checkpoint's config) and this CPU cannot: `) &&
    m.includes('resume it on a CPU with avx512_bf16, or start a new run (--force)');
  if (why) {
    // This CPU cannot make a bf16 checkpoint: one that says 'layers' (auto on a CPU with bf16) stands for a run from another machine.
    const state = stateOf(out);
    assert.equal(state.config.bf16, 'off', 'auto resolved to off here');
    state.config.bf16 = 'layers';
    fs.writeFileSync(path.join(out, 'checkpoint', 'state.json'), JSON.stringify(state));
    const before = snapshot(out);
    assert.throws(() => runQat({ out, config, resume: true, reporter: silentReporter }), (e: Error) => refusal('layers')(e.message) && e.message.includes(why));
    assert.deepEqual(snapshot(out), before, 'the refused resume changed nothing');
  } else {
    assert.equal(stateOf(out).config.bf16, 'layers', 'auto resolved to layers here');
    const before = snapshot(out);
    const resume = (env: Record<string, string>, extra: string[]) => spawnSync(process.execPath, [BIN, 'qat', '--out', out, '--resume', '--threads', String(getThreads()), ...extra],
      { encoding: 'utf8', env: { ...process.env, ...env } });
    // The same checkpoint on a CPU without bf16 (the level capped at avx2 stands for one).
    const capped = resume({ KDQAT_ISA: 'avx2' }, []);
    assert.notEqual(capped.status, 0);
    assert.ok(refusal('layers')(capped.stderr), capped.stderr);
    assert.deepEqual(snapshot(out), before, 'the refused resume changed nothing');
    // Here, `--bf16 auto` again is the checkpoint's mode (not a changed setting), and the run ends as the uninterrupted one.
    const r = resume({}, ['--bf16', 'auto']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(lossesOf(out), lossesOf(ref));
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).config.bf16, 'layers');
  }
  fs.rmSync(root, { recursive: true });
});
