// binding.gyp's probe for Open MPI: `node scripts/mpi-flags.cjs has|compile|link`.
//   has      1 when mpi.h can be compiled against (mpicc --showme, else pkg-config ompi), else 0
//   compile  the include flags (empty without MPI)
//   link     the linker flags, -lmpi included (empty without MPI)
// KDQAT_MPI=0 builds without MPI even where it is installed. Nothing here may fail: a machine
// without MPI must still build the addon (`npm ci`), just without `--distributed mpi`.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function probe() {
  if (process.env.KDQAT_MPI === '0') return null;
  let compile = run('mpicc', ['--showme:compile']);
  let link = run('mpicc', ['--showme:link']);
  if (compile === null || link === null) {
    compile = run('pkg-config', ['--cflags', 'ompi']);
    link = run('pkg-config', ['--libs', 'ompi']);
  }
  if (compile === null || link === null) return null;
  // The header must really be there (a stray mpicc wrapper without the -dev package is not MPI).
  const dirs = compile.split(/\s+/).filter((f) => f.startsWith('-I')).map((f) => f.slice(2));
  if (!dirs.some((d) => fs.existsSync(path.join(d, 'mpi.h'))) && !fs.existsSync('/usr/include/mpi.h')) return null;
  return { compile, link };
}

const what = process.argv[2];
const found = probe();
if (what === 'has') process.stdout.write(found ? '1' : '0');
else if (what === 'compile') process.stdout.write(found ? found.compile : '');
else if (what === 'link') process.stdout.write(found ? found.link : '');
else {
  process.stderr.write('usage: node scripts/mpi-flags.cjs has|compile|link\n');
  process.exit(2);
}
