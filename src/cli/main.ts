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
import { EXIT_CODES_HELP, UsageError, setCommandLine } from './options.js';
import { vocabularyHelp } from './flags.js';

/** `kdqat --help`: what every command shares. */
const COMMON_HELP = `
Flags mean the same in every command; these have one spelling everywhere (the older spellings
after "also" still work, on the command line and as --config keys, but are not listed in help):
${vocabularyHelp()}

--json: every command can print its result (a run's summary.json, an evaluation's report) as
one JSON object on stdout; progress and messages stay on stderr (\`kdqat … --json | jq\`).
${EXIT_CODES_HELP}
See docs/cli.md.`;

export async function main(argv: string[]): Promise<void> {
  setCommandLine(argv.slice(2));
  const program = new Command('kdqat')
    .description('Quantization-aware training with knowledge distillation for Transformers, on a CPU')
    .version('0.1.0')
    .showHelpAfterError()
    .addHelpText('after', COMMON_HELP);
  const commands = [
    demoCommand(), pretrainCommand(), finetuneCommand(), evalCommand(), quantizeCommand(), qatCommand(), reproduceCommand(),
    generateCommand(), exportCommand(), plotCommand(), reportCommand(), benchCommand(),
  ];
  for (const cmd of commands) {
    program.addCommand(cmd.exitOverride());
    for (const c of [cmd, ...cmd.commands]) c.addHelpText('after', EXIT_CODES_HELP);
  }
  // Throw instead of calling process.exit, so main can run inside tests; commander has printed
  // its own message by then.
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    // Exit status (docs/cli.md): 0 success (--help, --version), 2 usage error (commander's own:
    // an unknown flag, a missing or bad value; ours: UsageError), 1 failure at run time.
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`kdqat: ${(e as Error).message}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  }
}
