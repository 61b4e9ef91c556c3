// Errors from the data layer say where (file, and line when there is one), what is wrong and how
// to fix it, so a bad line in a 100k-line JSONL file can be found without a debugger.

export class DataError extends Error {
  readonly file: string;
  readonly line: number | undefined;

  constructor(file: string, line: number | undefined, problem: string, fix?: string) {
    const where = line === undefined ? file : `${file}:${line}`;
    super(`${where}: ${problem}${fix ? ` — ${fix}` : ''}`);
    this.name = 'DataError';
    this.file = file;
    this.line = line;
  }
}
