// Backend selection: the reference backend is always there; the native addon is used when it
// loaded, unless KDQAT_BACKEND=ref. Importing this module once sets everything up.
import { refKernels } from './ref/index.js';
import { nativeAddon, nativeLoadError, registerNative, type IsaInfo, type MpiBinding } from './native/index.js';
import { setBackend, type BackendName } from '../tensor/registry.js';
import type { KernelName } from '../tensor/kernels.js';

const kernelNames = Object.keys(refKernels) as KernelName[];
const nativeOk = registerNative(kernelNames);

let warned = false;
function warnNoNative(): void {
  if (warned) return;
  warned = true;
  process.stderr.write(
    `kdqat: WARNING: the native addon did not load (${nativeLoadError()}); running on the ` +
      `TypeScript reference backend, which is 10-100x slower.\n` +
      `kdqat: fix: make sure g++ and python3 are installed, then run \`npm rebuild kdqat\` ` +
      `(or \`npm run build:native\` in a checkout) and look at its errors.\n`,
  );
}

/** Chooses the backend: explicit name, else KDQAT_BACKEND, else native when available. */
export function useBackend(name?: BackendName): BackendName {
  const want = name ?? (process.env.KDQAT_BACKEND as BackendName | undefined) ?? 'native';
  if (want !== 'ref' && want !== 'native') {
    throw new Error(`KDQAT_BACKEND=${want} is not a backend (use 'ref' or 'native')`);
  }
  if (want === 'native' && !nativeOk) {
    warnNoNative();
    setBackend('ref');
    return 'ref';
  }
  setBackend(want);
  return want;
}

export function nativeAvailable(): boolean {
  return nativeOk;
}

/** Native thread count (1 on the reference backend). */
export function getThreads(): number {
  return nativeAddon()?.getThreads() ?? 1;
}

export function setThreads(n: number): void {
  nativeAddon()?.setThreads(n);
}

export function nativeIsa(): string | null {
  return nativeAddon()?.isa() ?? null;
}

/** Which ISA level and which code path per kernel family the addon selected (null without it). */
export function nativeIsaInfo(): IsaInfo | null {
  return nativeAddon()?.isaInfo() ?? null;
}

/** The addon's MPI entry points (native/mpi.cc), or why there are none: no addon, an addon
 *  from before MPI support, or one built without mpi.h (the reason then says how to install). */
export function nativeMpi(): { mpi: MpiBinding; reason: null } | { mpi: null; reason: string } {
  const a = nativeAddon();
  if (!a) return { mpi: null, reason: `the native addon did not load (${nativeLoadError()})` };
  if (typeof a.mpiInfo !== 'function') return { mpi: null, reason: 'the native addon predates MPI support; rebuild it (npm rebuild kdqat)' };
  const info = a.mpiInfo();
  if (!info.compiled) return { mpi: null, reason: info.reason ?? 'the native addon was built without MPI' };
  return { mpi: a as MpiBinding, reason: null };
}

/** Why withCompute('bf16') cannot run natively here (no addon, the CPU lacks avx512_bf16, or
 *  KDQAT_ISA caps the level below avx512), or null when it can. */
export function bf16Unavailable(): string | null {
  const a = nativeAddon();
  if (!a || !nativeOk) return `the native addon did not load (${nativeLoadError()})`;
  return a.bf16Available() ? null : a.isaInfo().bf16.reason ?? 'bf16 compute is unavailable';
}

/** Why `--bf16 auto` keeps float32 GEMMs on this CPU although bf16 ones run: an Intel CPU whose
 *  bf16 GEMM is the AVX512_BF16 kernel (no AMX), measured slower than the float32 GEMM there
 *  (0.5–0.7× on a Xeon with KDQAT_AMX=off, docs/performance.md); null where bf16 is the faster
 *  (AMX tiles; AMD Zen 4/5: 1.2–1.6×) or does not run. */
export function bf16Slower(): string | null {
  const a = nativeAddon();
  if (!a || !nativeOk || !a.bf16Available()) return null;
  const info = a.isaInfo();
  return info.vendor === 'GenuineIntel' && !info.amx.matmulBf16
    ? 'bf16 GEMMs without AMX (avx512_bf16 alone) measured slower than float32 ones on Intel CPUs'
    : null;
}

useBackend();
