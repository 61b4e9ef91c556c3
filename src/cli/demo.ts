// `kdqat demo`: the first thing to run on a fresh machine. Takes the built-in LM teacher
// (teachers/llama-sotu), quantizes it to 4 bits per output channel by round-to-nearest, by
// KD-QAT, and by KD-QAT with ov-freeze (paper A), one seed each, and prints the comparison:
// validation perplexity, multiple-choice accuracy on a small item budget, and the fraction of
// RTN's perplexity loss that KD-QAT recovers. It is `kdqat reproduce ov-freeze` cut to one
// quantizer and sized to finish in about 10 minutes on 2 cores.
import * as path from 'node:path';
import { Command } from 'commander';
import { OV_FREEZE } from '../experiments/ov-freeze.js';
import type { Experiment } from '../experiments/types.js';
import { reproduce, type ReproOpts } from './reproduce.js';
import { intArg } from './options.js';

const Q = 'w4-channel';

/** ov-freeze's w4-channel table, with a budget that fits the demo's time. */
export const DEMO: Experiment = {
  ...OV_FREEZE,
  name: 'demo',
  description: 'kdqat demo: RTN vs KD-QAT vs KD-QAT + ov-freeze, 4-bit per-channel weights, on the built-in SOTU LLaMA teacher',
  groups: OV_FREEZE.groups.filter((g) => g.key === Q),
  runs: (s) => OV_FREEZE.runs(s).filter((r) => r.groups.includes(Q)).map((r) => ({ ...r, groups: [Q] })),
  // Steps measured so that the whole demo takes ≤ 10 minutes with 2 threads (README).
  defaults: { ...OV_FREEZE.defaults, seeds: 1, steps: 150, batch: 8, seqLen: 128, lr: 1e-4, evalTokens: 16384, evalItems: 100 },
  quick: { ...OV_FREEZE.quick, seeds: 1 },
};

export const DEMO_OUT = 'kdqat-demo';

export function demoCommand(): Command {
  const d = DEMO.defaults;
  return new Command('demo')
    .description('quantize the built-in LM teacher to 4 bits: round-to-nearest vs KD-QAT vs KD-QAT + ov-freeze, and compare (about 10 minutes on 2 cores)')
    .option('--out <dir>', `output directory (default ./${DEMO_OUT})`)
    .option('--force', 'start over: remove an earlier demo in --out')
    .option('--steps <n>', `KD-QAT steps per run (default ${d.steps})`, intArg)
    .option('--threads <n>', 'native threads (default: all cores)', intArg)
    .option('--teacher <dir>', 'another LLaMA teacher directory (default: the built-in teachers/llama-sotu)')
    .option('--quick', 'a tiny setting (2 steps, a few items) that only checks the machinery')
    .addHelpText('after', `
What it does: evaluates the teacher (teachers/llama-sotu, a 4.5M-parameter LLaMA trained on the
State of the Union addresses); quantizes its projections to 4-bit integers per output channel by
round-to-nearest (RTN); trains two students with KD-QAT (${d.steps} steps of ${d.batch} × ${d.seqLen} tokens,
the teacher's logits as the target), one of them with ov-freeze (v_proj/o_proj not trained, paper
A); then prints perplexity on the first ${d.evalTokens} tokens of the held-out validation addresses,
accuracy on ${d.evalItems} items of each built-in multiple-choice task, and how much of RTN's perplexity
loss KD-QAT recovered.

Output: ./${DEMO_OUT}/ (or --out): results.md, results.json, and runs/<run>/0/ with each student
model directory (kdqat eval --model ./${DEMO_OUT}/runs/qat-w4-channel/0/student) and its
KD-QAT log (kdqat plot). Running the demo again continues or re-prints the same demo; --force
starts over. The full comparison (three quantizers, three seeds) is kdqat reproduce ov-freeze.`)
    .action(async function (this: Command) {
      const o = this.opts() as ReproOpts;
      await reproduce(DEMO, { ...o, seeds: undefined }, path.resolve(o.out ?? DEMO_OUT));
    });
}
