// A usage error: the command line or --config asks for something kdqat cannot run (a missing or
// conflicting flag, a value out of range). kdqat exits with status 2 for these and 1 for
// failures at run time (a file that cannot be read, a loss that turns NaN, …): docs/cli.md.
// It lives here, below the CLI, because the settings checks of the runners throw it too.
export class UsageError extends Error {}

/** The flag of a settings key: camelCase → --kebab-case (weightDecay → --weight-decay). */
export const flagName = (k: string): string => `--${k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`;
