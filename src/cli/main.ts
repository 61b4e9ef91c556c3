// Command-line entry: one subcommand per file under src/cli/commands/.
import { Command } from 'commander';
import { benchCommand } from './bench.js';
import { evalCommand } from './eval.js';
import { generateCommand } from './generate.js';
import { exportCommand } from './export.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('kdqat')
    .description('Quantization-aware training with knowledge distillation for Transformers, on a CPU')
    .version('0.1.0')
    .showHelpAfterError();
  program.addCommand(benchCommand());
  program.addCommand(evalCommand());
  program.addCommand(generateCommand());
  program.addCommand(exportCommand());
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.stderr.write(`kdqat: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
