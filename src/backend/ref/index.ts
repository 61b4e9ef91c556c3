// The TypeScript reference backend: every kernel of src/tensor/kernels.ts as plain loops.
import { registerKernels } from '../../tensor/registry.js';
import { gemmKernels } from './gemm.js';
import { elementwiseKernels } from './elementwise.js';
import { nnKernels } from './nn.js';
import { attentionKernels } from './attention.js';
import { optimKernels } from './optim.js';
import { quantKernels } from './quant.js';
import { kquantKernels } from './kquant.js';
import { topkKlKernels } from './topk-kl.js';

export const refKernels = {
  ...gemmKernels, ...elementwiseKernels, ...nnKernels, ...attentionKernels, ...optimKernels,
  ...quantKernels, ...kquantKernels, ...topkKlKernels,
};

registerKernels('ref', refKernels);
