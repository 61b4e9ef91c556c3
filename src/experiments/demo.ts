// The demo's experiment: ov-freeze's w4-channel-lsq table (4-bit per output channel with learned
// steps: teacher, RTN, KD-QAT, KD-QAT + ov-freeze), one seed, with a step count and evaluation
// budget that fit in 10 minutes on 2 cores.
import { OV_FREEZE } from './ov-freeze.js';
import type { Experiment } from './types.js';

const Q = 'w4-channel-lsq';

export const DEMO: Experiment = {
  ...OV_FREEZE,
  name: 'demo',
  description: 'kdqat demo: RTN vs KD-QAT vs KD-QAT + ov-freeze, 4-bit per-channel weights with learned steps, on the built-in LLaMA teacher',
  groups: OV_FREEZE.groups.filter((g) => g.key === Q),
  // (Not the --freeze auto row: the demo is paper A's three methods and must fit its 10 minutes.)
  runs: (s) => OV_FREEZE.runs(s).filter((r) => r.groups.includes(Q) && r.family !== 'qat-auto').map((r) => ({ ...r, groups: [Q] })),
  // 150 steps: the demo took 2 min 50 s on two idle cores (295 CPU-seconds; docs/reproduce.md),
  // which leaves room for slower machines under the 10 minutes it promises.
  defaults: { ...OV_FREEZE.defaults, seeds: 1, steps: 150, batch: 8, seqLen: 128, lr: 1e-4, evalTokens: 16384, evalItems: 100 },
  quick: { ...OV_FREEZE.quick, seeds: 1 },
};

