// train_log.jsonl: one JSON object per logged step ({step, loss, lr, tokens_per_s, ...eval
// metrics}). Appended line by line; a resumed run first cuts the file back to the byte offset
// recorded in its checkpoint, so steps redone after a crash are not logged twice.
import * as fs from 'node:fs';
import { explainFsError } from '../io/files.js';

export class TrainLog {
  constructor(readonly file: string) {}

  /** Starts a fresh log (an existing file is replaced). */
  reset(): void {
    fs.writeFileSync(this.file, '');
  }

  /** Cuts the log back to `bytes` (the checkpoint's log position) for a resumed run. */
  truncate(bytes: number): void {
    const size = fs.existsSync(this.file) ? fs.statSync(this.file).size : 0;
    if (size < bytes) {
      // Only possible after a power loss that kept the checkpoint but not the log tail.
      throw new Error(`${this.file}: is ${size} bytes, shorter than the ${bytes} recorded in the checkpoint; ` +
        'the log was truncated or replaced — start a new run with --force');
    }
    fs.truncateSync(this.file, bytes);
  }

  append(record: Record<string, unknown>): void {
    try {
      fs.appendFileSync(this.file, JSON.stringify(record) + '\n');
    } catch (e) {
      throw explainFsError(e, this.file, 'write');
    }
  }

  /** Current size in bytes, after forcing it to disk (the checkpoint records it). */
  syncedSize(): number {
    const fd = fs.openSync(this.file, 'r+');
    try {
      fs.fsyncSync(fd);
      return fs.fstatSync(fd).size;
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Reads a train_log.jsonl file back (for tests and summaries). */
export function readTrainLog(file: string): Record<string, number>[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l, i) => {
    try {
      return JSON.parse(l) as Record<string, number>;
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
  });
}
