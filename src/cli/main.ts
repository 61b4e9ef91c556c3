// Command-line entry: one subcommand per file under src/cli/.
import { Command, CommanderError } from 'commander';
import { benchCommand } from './bench.js';
import { evalCommand } from './eval.js';
import { generateCommand } from './generate.js';
import { exportCommand } from './export.js';
import { pretrainCommand } from './pretrain.js';
import { finetuneCommand } from './finetune.js';
import { plotCommand } from './plot.js';
import { reportCommand } from './report.js';
import { quantizeCommand } from './quantize.js';
import { qatCommand } from './qat.js';
import { reproduceCommand } from './reproduce.js';
import { demoCommand } from './demo.js';
import { setCommandLine } from './options.js';

export async function main(argv: string[]): Promise<void> {
  setCommandLine(argv.slice(2));
  const program = new Command('kdqat')
    .description('Quantization-aware training with knowledge distillation for Transformers, on a CPU')
    .version('0.1.0')
    .showHelpAfterError();
  const commands = [
    demoCommand(), pretrainCommand(), finetuneCommand(), evalCommand(), quantizeCommand(), qatCommand(), reproduceCommand(),
    generateCommand(), exportCommand(), plotCommand(), reportCommand(), benchCommand(),
  ];
  for (const cmd of commands) program.addCommand(cmd.exitOverride());
  // Throw instead of calling process.exit, so main can run inside tests; commander has printed
  // its own message by then.
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`kdqat: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
