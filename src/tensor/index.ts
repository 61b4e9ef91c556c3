// The tensor library: Tensor, autograd, ops. Importing it sets up the backends.
import '../backend/index.js';
export * from './tensor.js';
export { backward, noGrad, isRecording, setCheckNumerics, NumericsError } from './autograd.js';
export { recompute, withRecompute, recomputeModeOf, storagePolicyFor, RECOMPUTE_MODES, type RecomputeMode } from './recompute.js';
export {
  withCompute, computePrecision, withIntegerGemm, integerGemmEnabled, withGridGemm, gridGemmEnabled, withInt8Grad, int8GradEnabled,
  type ComputePrecision,
} from './compute.js';
export * from './ops/index.js';
export { Rng, hash32 } from './rng.js';
export { useBackend, nativeAvailable, getThreads, setThreads, nativeIsa, nativeIsaInfo, bf16Unavailable } from '../backend/index.js';
