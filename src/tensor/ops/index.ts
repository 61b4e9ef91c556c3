// Every op, one import away.
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './matmul.js';
export * from './nn.js';
export * from './loss.js';
export * from './attention.js';
export * from './head-kl.js';
