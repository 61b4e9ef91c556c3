// Reference kernels, family 'optim': plain loops that define the semantics of
// src/tensor/kernels.ts. Clarity over speed; the native backend is tested against these.
import type { Kernels } from '../../tensor/kernels.js';

export const optimKernels: Partial<Kernels> = {};
