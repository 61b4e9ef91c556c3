// Child process for checkpoint.test.ts: saves checkpoint 1, changes the parameters, then saves
// checkpoint 2 and SIGKILLs itself at the stage named by argv[3] (a crash mid-write).
import { freshParams } from './helpers.js';
import { AdamW } from '../../src/train/optim.js';
import { saveCheckpoint, type CheckpointState } from '../../src/train/checkpoint.js';
import { Tensor } from '../../src/tensor/index.js';

const [outDir, stage] = process.argv.slice(2);
const params = freshParams('llama', 3);
const opt = new AdamW(params, { lr: 1e-3 });
const state = (step: number): CheckpointState => ({
  step, totalSteps: 10, epoch: 0, batchIndex: step, seeds: { run: 1 }, config: { arch: 'llama' }, logPosition: 0,
  pending: { lossSum: 0, steps: 0 }, tokensSeen: 0, elapsedSeconds: 0, trainSeconds: 0, extra: {},
});
const stepOnce = (): void => {
  for (const p of params.values()) p.grad = new Tensor(p.f32.map((_, i) => Math.sin(i)), p.shape);
  opt.step(1e-3);
  opt.zeroGrad();
};
stepOnce();
saveCheckpoint(outDir, params, opt, state(1));
stepOnce();
saveCheckpoint(outDir, params, opt, state(2), (s) => {
  if (s === stage) process.kill(process.pid, 'SIGKILL');
});
