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
