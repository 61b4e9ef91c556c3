// Runs the test files under test/ with Node's test runner (Node 20 does not expand globs), once
// per SIMD path of the native addon:
//   1. every matching file with KDQAT_ISA = the best level this CPU supports;
//   2. the kernel tests (the files that compare native kernels with the TypeScript reference,
//      KERNEL_TESTS) again with KDQAT_ISA capped at each lower level (avx2, portable);
//   3. on a CPU whose AMX the addon uses (isaInfo().amx), the GEMM tests of the kernels with an
//      AMX engine (AMX_TESTS) again with KDQAT_AMX=off, so their AVX-512 kernels are tested too;
//   4. at avx512, the fp32 GEMM tests (GEMM_TESTS) again with the other KDQAT_GEMM_PREFETCH
//      setting (on AMD the instance with prefetches, on Intel the one without).
// Each child checks that the addon really runs the level it was given (test/backend/isa.test.ts
// reads isaInfo() against KDQAT_EXPECT_ISA). At the end it prints which path each kernel family
// was tested on, which levels this CPU could not run (never counted as passed), and the summed
// counts in the test runner's own closing format (`# pass N`, `# fail N` last).
//
// Usage: node scripts/test.mjs [--isa=avx2,portable] [filter-substring ...]
//   --isa  run only these levels (the first listed that the CPU supports gets all files).
import { readdirSync, statSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

// The files whose tests compare native kernels with the reference (or assert which native path
// runs); the rest of the suite exercises kernels only through ops, on the best level.
const KERNEL_TESTS = ['test/backend/', 'test/quant/native.test.ts'];
// The files that test each kernel family of isaInfo().families against the reference: a family
// counts as tested on a path only when one of its files ran there.
const FAMILY_TESTS = {
  gemm: ['test/backend/gemm'],
  elementwise: ['test/backend/elementwise'],
  nn: ['test/backend/nn-native', 'test/backend/prob-kl'],
  optim: ['test/backend/optim'],
  attention: ['test/backend/attention'],
  quant: ['test/quant/native'],
  kquant: ['test/backend/kquant'],
  topk: ['test/backend/topk-logits'],
  gemmQ8: ['test/backend/gemm-q8'],
};

// The tests of the kernels AMX runs (matmulBf16, matmulQ8, matmulOnGrid); withIsaTest adds isa.test.ts, which
// checks the switch (KDQAT_EXPECT_AMX).
const AMX_KERNEL_TESTS = { matmulBf16: 'test/backend/gemm-bf16', matmulQ8: 'test/backend/gemm-q8', matmulOnGrid: 'test/backend/gemm-grid' };
const AMX_TESTS = Object.values(AMX_KERNEL_TESTS);
// The fp32 GEMM's tests, run again with the other prefetch instance (isa.test.ts checks the
// switch: KDQAT_EXPECT_GEMM_PREFETCH).
const GEMM_TESTS = ['test/backend/gemm.test.ts'];

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const plural = (n, what) => `${n} ${what}${n === 1 ? '' : 's'}`;
const args = process.argv.slice(2);
const isaArg = args.find((a) => a.startsWith('--isa='));
const filters = args.filter((a) => !a.startsWith('--'));
const files = walk('test').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const kernelFiles = files.filter((f) => KERNEL_TESTS.some((k) => f.startsWith(k)));
// Every run checks that the addon runs the level it was given, whatever the filter.
const ISA_TEST = join('test', 'backend', 'isa.test.ts');
const withIsaTest = (fs) => (fs.includes(ISA_TEST) ? fs : [ISA_TEST, ...fs]);

// What this CPU supports, from the addon itself (uncapped: `cpu` ignores KDQAT_ISA).
let info = null;
let mpi = null;  // the addon's mpiInfo(): whether --distributed mpi was compiled in
let addonError = null;
try {
  const path = process.env.KDQAT_ADDON ?? join(process.cwd(), 'build', 'Release', 'kdqat.node');
  if (!existsSync(path)) throw new Error(`${path} does not exist`);
  const addon = createRequire(import.meta.url)(path);
  info = addon.isaInfo();
  mpi = addon.mpiInfo?.() ?? { compiled: false, reason: 'the addon predates MPI support' };
} catch (e) {
  addonError = e.message;
}

// ---- plan: one run per level, best first --------------------------------------------------
const runs = [];  // { isa, files, what } or { isa, notCovered: reason }
if (info) {
  const names = info.levels.map((l) => l.isa);
  const rank = (isa) => names.indexOf(isa);
  const userCap = process.env.KDQAT_ISA;
  const wanted = isaArg ? isaArg.slice(6).split(',').filter(Boolean) : names.slice().reverse();
  for (const w of wanted) {
    if (rank(w) < 0) {
      console.error(`--isa=${w}: not a level of this addon (${names.join(', ')})`);
      process.exit(1);
    }
  }
  let first = true;
  for (const isa of names.slice().reverse()) {
    if (!wanted.includes(isa)) continue;
    const lvl = info.levels[rank(isa)];
    if (lvl.missing.length > 0) {
      runs.push({ isa, notCovered: `CPU lacks ${lvl.missing.join(', ')}` });
    } else if (userCap && rank(userCap) >= 0 && rank(isa) > rank(userCap)) {
      runs.push({ isa, notCovered: `KDQAT_ISA=${userCap} in the environment caps it` });
    } else if (first) {
      runs.push({ isa, files: withIsaTest(files),
        what: filters.length ? `${plural(files.length, 'matching file')}` : `all ${files.length} files` });
      first = false;
    } else if (kernelFiles.length > 0) {
      runs.push({ isa, files: withIsaTest(kernelFiles), what: plural(kernelFiles.length, 'kernel test file') });
    } else {
      runs.push({ isa, notCovered: 'no kernel test file matches the filter' });
    }
  }
  // AMX off: the same level's AVX-512 kernels of matmulBf16 and matmulQ8 (without AMX the first
  // run tested them; the summary's `# amx:` line says why AMX was not covered).
  const top = runs.find((r) => r.files);
  const amxFiles = files.filter((f) => AMX_TESTS.some((k) => f.startsWith(k)));
  if (top?.isa === 'avx512' && info.amx?.available && !process.env.KDQAT_AMX && amxFiles.length) {
    runs.push({ isa: 'avx512', amx: 'off', files: withIsaTest(amxFiles), what: plural(amxFiles.length, 'AMX kernel test file') });
  }
  const gemmFiles = files.filter((f) => GEMM_TESTS.includes(f));
  if (top?.isa === 'avx512' && !process.env.KDQAT_GEMM_PREFETCH && gemmFiles.length) {
    runs.push({ isa: 'avx512', prefetch: info.gemmPrefetch ? 'off' : 'on', files: withIsaTest(gemmFiles),
      what: plural(gemmFiles.length, 'fp32 GEMM test file') });
  }
} else {
  runs.push({ isa: null, files, what: `all ${files.length} files` });
}

// ---- run ------------------------------------------------------------------------------------
// A rerun's switch beside its level: ' KDQAT_AMX=off', ' KDQAT_GEMM_PREFETCH=on', or ''.
const variant = (run) => (run.amx ? ` KDQAT_AMX=${run.amx}` : '') + (run.prefetch ? ` KDQAT_GEMM_PREFETCH=${run.prefetch}` : '');
const KEYS = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'];
const total = Object.fromEntries(KEYS.map((k) => [k, 0]));
const tmp = mkdtempSync(join(tmpdir(), 'kdqat-test-'));
const started = Date.now();
let failed = false;
const reporter = process.stdout.isTTY ? 'spec' : 'tap';  // Node's own default
for (const run of runs) {
  if (!run.files) continue;
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  // Storage a kernel must fully overwrite starts as NaN, so an unwritten element shows (tensor.ts).
  env.KDQAT_POISON_UNINIT ??= '1';
  if (run.isa) {
    env.KDQAT_ISA = run.isa;
    env.KDQAT_EXPECT_ISA = run.isa;
    if (run.amx) env.KDQAT_AMX = env.KDQAT_EXPECT_AMX = run.amx;
    if (run.prefetch) env.KDQAT_GEMM_PREFETCH = env.KDQAT_EXPECT_GEMM_PREFETCH = run.prefetch;
    console.log(`# ==== KDQAT_ISA=${run.isa}${variant(run)}: ${run.what} ====`);
  }
  // A second reporter writes TAP to a file, whatever the console shows, to read the counts.
  const tap = join(tmp, `${run.isa ?? 'default'}${run.amx ? '-amx-' + run.amx : ''}${run.prefetch ? '-prefetch-' + run.prefetch : ''}.tap`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--test',
    '--test-concurrency=1', `--test-reporter=${reporter}`, '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...run.files],
  { stdio: 'inherit', env });
  const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
  run.counts = {};
  for (const k of KEYS) {
    const all = [...text.matchAll(new RegExp(`^# ${k} (\\d+)$`, 'gm'))];
    run.counts[k] = all.length ? Number(all[all.length - 1][1]) : 0;
  }
  run.status = r.status;
  if (r.status !== 0 && run.counts.fail === 0) {
    // The runner died (signal, SIGILL on a wrong path) or failed outside any test: count it.
    run.counts.fail = 1;
    run.crash = r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
  }
  for (const k of KEYS) total[k] += run.counts[k];
  failed ||= r.status !== 0 || run.counts.fail > 0;
}
rmSync(tmp, { recursive: true, force: true });

// ---- summary --------------------------------------------------------------------------------
const out = [];
if (!info) {
  out.push(`# SIMD paths: none covered (the native addon did not load: ${addonError})`);
} else {
  out.push(`# SIMD paths (CPU supports up to ${info.cpu}${process.env.KDQAT_ISA ? `; KDQAT_ISA=${process.env.KDQAT_ISA}` : ''}):`);
  for (const run of runs) {
    const v = variant(run).trim();
    const head = `#   ${(run.isa + (v ? ` (${v})` : '')).padEnd(v ? v.length + 11 : 9)}`;
    if (run.notCovered) out.push(`${head}not covered (${run.notCovered})`);
    else {
      const c = run.counts;
      out.push(`${head}${run.what.padEnd(24)} pass ${c.pass}, fail ${c.fail}` +
        (run.crash ? ` (test process failed: ${run.crash})` : ''));
    }
  }
  out.push('# kernel family: code path tested <- under which KDQAT_ISA runs');
  const rank = (isa) => info.levels.findIndex((l) => l.isa === isa);
  for (const [fam, { paths }] of Object.entries(info.families)) {
    const mine = FAMILY_TESTS[fam] ?? [];
    const ran = [...new Set(runs.filter((r) => !r.amx && r.files?.some((f) => mine.some((m) => f.startsWith(m)))).map((r) => r.isa))];
    if (ran.length === 0) {
      out.push(`#   ${fam.padEnd(12)} not tested (${mine.length ? 'no test file of it ran' : 'no test file known to scripts/test.mjs'})`);
      continue;
    }
    const parts = [];
    for (const p of paths.slice().reverse()) {
      // The caps that run path p: p itself and every level above it up to the family's next path.
      const next = paths[paths.indexOf(p) + 1];
      const by = ran.filter((isa) => rank(isa) >= rank(p) && (next === undefined || rank(isa) < rank(next)));
      parts.push(by.length ? `${p} <- ${by.join(', ')}` : `${p} NOT COVERED`);
    }
    const top = paths[paths.length - 1];
    const above = info.levels.filter((l) => rank(l.isa) > rank(top)).map((l) => l.isa);
    out.push(`#   ${fam.padEnd(12)} ${parts.join('; ')}` +
      (above.length ? ` (no ${above.join('/')} code: ${above.join('/')} runs its ${top} code)` : ''));
  }
  // AMX: which kernels ran on it in the runs above, and whether their AVX-512 kernels ran too.
  const amxOff = runs.find((r) => r.amx === 'off');
  const ranAt512 = (prefix) => runs.some((r) => !r.amx && r.isa === 'avx512' && r.files?.some((f) => f.startsWith(prefix)));
  const onAmx = Object.entries(AMX_KERNEL_TESTS).filter(([k, file]) => info.amx?.[k] && ranAt512(file)).map(([k]) => k);
  const amxOn = info.amx?.available && onAmx.length > 0;
  const amxWhyNot = !info.amx ? 'the addon predates AMX' : info.amx.available ? 'no AMX kernel test file ran at avx512' : info.amx.reason;
  out.push(`# amx: ${amxOn ? `${onAmx.join(', ')} on AMX <- avx512` : `not covered (${amxWhyNot})`}` +
    (amxOff?.files ? `; their AVX-512 kernels <- avx512 with KDQAT_AMX=off` : ''));
  // The fp32 GEMM's two AVX-512 instances (native/gemm.cc): which ran its tests.
  const gemmAt512 = runs.filter((r) => !r.amx && r.isa === 'avx512' && r.files?.some((f) => GEMM_TESTS.includes(f)));
  const instances = [...new Set(gemmAt512.map((r) => (r.prefetch ? r.prefetch === 'on' : info.gemmPrefetch)))];
  out.push(`# gemm prefetch: ${gemmAt512.length === 0 ? 'not covered (the fp32 GEMM tests did not run at avx512)'
    : [true, false].map((on) => `${on ? 'with' : 'without'} prefetches ${instances.includes(on) ? '<- avx512' : 'NOT COVERED'}`).join('; ')}`);
  out.push(`# mpi: ${mpi.compiled ? 'compiled in (the distributed tests ran mpirun jobs)' : `not compiled in: ${mpi.reason}`}`);
}
// The closing lines in the test runner's own format, summed over the runs.
for (const k of KEYS) out.push(`# ${k} ${total[k]}`);
out.push(`# duration_ms ${Date.now() - started}`);
console.log(out.join('\n'));
process.exit(failed ? 1 : 0);
