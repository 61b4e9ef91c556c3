// Loads the C++ addon (build/Release/kdqat.node, built by node-gyp at `npm install`) and
// registers its kernels. If it is missing or fails to load, kdqat runs on the reference
// backend and says so once, with the reason and the fix.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels, KernelName } from '../../tensor/kernels.js';
import { registerKernels } from '../../tensor/registry.js';

/** What the addon runs on this CPU (native/addon.cc isaInfo()). */
export interface IsaInfo {
  cpu: string;           // best ISA level the CPU supports
  vendor: string;        // CPUID's vendor string: GenuineIntel, AuthenticAMD, …
  cap: string | null;    // KDQAT_ISA, when set
  isa: string;           // the level in force: cpu capped by KDQAT_ISA
  levels: { isa: string; features: string[]; missing: string[] }[];  // ascending
  /** Per kernel family: its compiled paths (ascending) and the one it selected. */
  families: Record<string, { selected: string; paths: string[] }>;
  /** matmulBf16 (AVX512_BF16): whether it runs here, and if not why (CPU feature or cap). */
  bf16: { available: boolean; reason: string | null };
  /** AMX tiles (native/amx.h): whether they can run here, and which kernels use them. */
  amx: { available: boolean; reason: string | null; matmulBf16: boolean; matmulQ8: boolean; matmulOnGrid: boolean };
  /** The fp32 GEMM runs its AVX-512 instance with software prefetches (Intel; KDQAT_GEMM_PREFETCH). */
  gemmPrefetch: boolean;
}

/** native/mpi.cc: whether the addon was built with MPI (reason: how to get it when not). */
export interface MpiInfo {
  compiled: boolean;
  version: string | null;
  reason: string | null;
}

/** native/mpi.cc's entry points (every one but mpiInfo throws in an addon built without MPI). */
export interface MpiBinding {
  mpiInfo(): MpiInfo;
  mpiInit(): { rank: number; size: number };
  /** In place: the sum over ranks, in rank order, identical on every rank. */
  mpiAllReduceSum(x: Float32Array | Float64Array): void;
  mpiBarrier(): void;
  mpiAbort(code: number): void;
  mpiFinalize(): void;
  /** Text printed to stderr if the process is ended by SIGTERM (mpirun ending the job). */
  mpiLastWords(text: string): void;
}

export interface NativeAddon extends Partial<Kernels>, Partial<MpiBinding> {
  getThreads(): number;
  setThreads(n: number): void;
  isa(): string;
  isaInfo(): IsaInfo;
  bf16Available(): boolean;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const addonPath = process.env.KDQAT_ADDON ?? join(root, 'build', 'Release', 'kdqat.node');

let addon: NativeAddon | null = null;
let loadError: string | null = null;
try {
  if (!existsSync(addonPath)) throw new Error(`${addonPath} does not exist`);
  addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
} catch (e) {
  loadError = (e as Error).message;
}

/** The loaded addon, or null (see nativeLoadError()). */
export function nativeAddon(): NativeAddon | null {
  return addon;
}

export function nativeLoadError(): string | null {
  return loadError;
}

/** Registers every kernel the addon exports under the names of src/tensor/kernels.ts. */
export function registerNative(names: readonly KernelName[]): boolean {
  if (!addon) return false;
  const table: Partial<Kernels> = {};
  // matmulQ8's plain C++ path is slower than the float32 GEMM it would replace (Linear's
  // integer forward, src/tensor/ops/matmul.ts, runs only where kernelSource says native): it is
  // registered only where a SIMD path (avx2, avx512 with VNNI) runs it; matmulQ8Grad likewise.
  const q8Portable = addon.isaInfo().families.gemmQ8?.selected === 'portable';
  // matmulOnGrid runs only on AMX (native/gemm_grid.cc) and throws elsewhere: registered where it runs.
  const onGrid = addon.isaInfo().amx.matmulOnGrid;
  for (const name of names) {
    if ((name === 'matmulQ8' || name === 'matmulQ8Grad') && q8Portable) continue;
    if (name === 'matmulOnGrid' && !onGrid) continue;
    const fn = addon[name];
    if (typeof fn === 'function') (table as Record<string, unknown>)[name] = fn;
  }
  registerKernels('native', table);
  return true;
}
