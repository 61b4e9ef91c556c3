// `npm run test:asan`: builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into
// build-asan/ (beside the normal build, which it leaves alone) and runs the kernel tests (every
// SIMD level this CPU has, as `npm test` does) and the model tests against it, with the ASan
// runtime preloaded into node. Any report — out-of-bounds access, use after free, signed
// overflow, misaligned load, … — aborts the process, so the run fails.
//
// Usage: node scripts/test-asan.mjs [filter-substring ...] (default: test/backend test/quant
// test/models test/tensor).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const dir = join(root, 'build-asan');
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
};
const out = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout.trim();

// The sanitizer runtimes come with GCC (Debian: libasan8, libubsan1, installed with g++).
const libasan = out('gcc', ['-print-file-name=libasan.so']);
if (!libasan.startsWith('/') || !existsSync(libasan)) {
  console.error(`test:asan: GCC's libasan.so was not found (gcc -print-file-name=libasan.so gave "${libasan}"); install g++ (Debian: apt-get install g++)`);
  process.exit(1);
}

// A binding.gyp of its own: the same sources and flags as the addon's, plus the sanitizers,
// -O1 and frame pointers for readable reports.
// Its commands (`<!(node scripts/…)`) run in build-asan/, one level down.
const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '')
  .replaceAll('node scripts/', 'node ../scripts/'));
const t = gyp.targets[0];
t.sources = t.sources.map((s) => `../${s}`); // relative to build-asan/binding.gyp
const san = ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer', '-g'];
t.cflags_cc = [...t.cflags_cc.filter((f) => f !== '-O3'), '-O1', ...san];
t.ldflags = [...(t.ldflags ?? []), '-fsanitize=address,undefined'];
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'binding.gyp'), JSON.stringify(gyp, null, 2));
const gypBin = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
console.error('test:asan: building the addon with -fsanitize=address,undefined into build-asan/ …');
if (run(process.execPath, [gypBin, 'rebuild', '--silent'], { cwd: dir }) !== 0) process.exit(1);

const filters = process.argv.slice(2);
const status = run(process.execPath, [join(root, 'scripts', 'test.mjs'), ...(filters.length ? filters : ['test/backend', 'test/quant', 'test/models', 'test/tensor'])], {
  cwd: root,
  env: {
    ...process.env,
    KDQAT_ADDON: join(dir, 'build', 'Release', 'kdqat.node'),
    LD_PRELOAD: libasan,
    // Node and V8 are not instrumented: their allocations are not leaks to report.
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
    UBSAN_OPTIONS: 'halt_on_error=1:abort_on_error=1:print_stacktrace=1',
  },
});
process.exit(status);
