// Kernel registry (tfjs-core style): backends register kernels by (backend, name); ops look
// them up through `kernel(name)` and never import a backend.
import type { KernelName, Kernels } from './kernels.js';

export type BackendName = 'ref' | 'native';

const tables: Record<BackendName, Partial<Kernels>> = { ref: {}, native: {} };
let active: BackendName = 'ref';
// Resolved table for the active backend: native kernels where present, ref otherwise.
let resolved: Partial<Kernels> = tables.ref;

export function registerKernels(backend: BackendName, kernels: Partial<Kernels>): void {
  Object.assign(tables[backend], kernels);
  resolve();
}

export function setBackend(name: BackendName): void {
  active = name;
  resolve();
}

export function getBackend(): BackendName {
  return active;
}

/** Which backend serves `name` right now ('ref' when native lacks it). */
export function kernelSource(name: KernelName): BackendName | null {
  if (active === 'native' && tables.native[name]) return 'native';
  return tables.ref[name] ? 'ref' : null;
}

function resolve(): void {
  resolved = active === 'native' ? { ...tables.ref, ...tables.native } : { ...tables.ref };
  if (profile) {
    for (const [name, fn] of Object.entries(resolved)) {
      const f = fn as (...args: unknown[]) => unknown;
      (resolved as Record<string, unknown>)[name] = (...args: unknown[]): unknown => {
        const f0 = process.resourceUsage().minorPageFault;
        const t0 = performance.now();
        const r = f(...args);
        const e = profile!.get(name) ?? { calls: 0, ms: 0, faults: 0 };
        e.calls++;
        e.ms += performance.now() - t0;
        e.faults += process.resourceUsage().minorPageFault - f0;
        profile!.set(name, e);
        return r;
      };
    }
  }
}

// KDQAT_PROFILE=1: time every kernel call (wall clock) and count the page faults taken inside it
// (first touches of fresh memory), for `kernelProfile()`.
let profile: Map<string, { calls: number; ms: number; faults: number }> | null =
  process.env.KDQAT_PROFILE === '1' ? new Map() : null;

/** Per-kernel call counts, wall time and minor page faults since start (KDQAT_PROFILE=1), slowest first. */
export function kernelProfile(): { name: string; calls: number; ms: number; faults: number }[] {
  if (!profile) return [];
  return [...profile].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms);
}

/** Clears what `kernelProfile()` reports (KDQAT_PROFILE=1), e.g. to leave warm-up steps out. */
export function resetKernelProfile(): void {
  profile?.clear();
}

/** The active backend's kernel `name`. */
export function kernel<K extends KernelName>(name: K): Kernels[K] {
  const k = resolved[name];
  if (!k) throw new Error(`no kernel '${name}' registered for backend '${active}'`);
  return k as Kernels[K];
}

/** A specific backend's kernel (tests compare backends with this). */
export function kernelOf<K extends KernelName>(backend: BackendName, name: K): Kernels[K] | undefined {
  return tables[backend][name] as Kernels[K] | undefined;
}
