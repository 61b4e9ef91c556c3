// One fuzz case: a workspace made from the valid inputs (base.ts) with one thing changed, the
// command a user would run on it, and what the one error message must name.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Base } from './base.js';

export interface FuzzCase {
  /** Stable name: category/mutation/command#n. */
  id: string;
  category: string;
  /** Builds the workspace `ws` (an empty directory) from the base inputs. */
  setup(ws: string, base: Base): void;
  /** The kdqat command line (argv after `kdqat`), or a library call for readers no command
   *  uses (GGUF: kdqat writes GGUF but reads it only to check its own exports). */
  run: { argv: (ws: string) => string[] } | { call: (ws: string) => unknown };
  /** 'error': non-zero exit with one message naming `file` and `field`; 'ok': must succeed
   *  (the safety cases: a model directory whose code/pickles must be ignored, not run). */
  expect: 'error' | 'ok';
  /** Base name of the file the message must name. */
  file: string;
  /** What the message must name (case-insensitive): the key, tensor, line or field. */
  field: string;
  /** An 'ok' case's extra check on the workspace after the run (null = fine). */
  after?: (ws: string) => string | null;
}

/** Where a case's model directory goes inside its workspace. */
export const M = (ws: string): string => path.join(ws, 'm');
export const OUT = (ws: string): string => path.join(ws, 'out');

export function copyDir(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true });
}

/** The commands run on a model directory `ws/m` of each kind; data files are copied in by
 *  `dataFor`. Each writes (if it gets that far) under ws/out. */
export type Kind = 'llama' | 'bert' | 'student';
export const COMMANDS: Record<Kind, Record<string, (ws: string) => string[]>> = {
  llama: {
    eval: (ws) => ['eval', '--model', M(ws), '--text', path.join(ws, 'text.txt'), '--seq', '16'],
    quantize: (ws) => ['quantize', '--model', M(ws), '--quant', 'w4-channel', '--out', OUT(ws), '--json'],
    qat: (ws) => ['qat', '--teacher', M(ws), '--data', path.join(ws, 'text.txt'), '--steps', '1', '--seq-len', '16', '--batch', '1',
      '--eval-windows', '1', '--out', OUT(ws)],
    'export-gguf': (ws) => ['export', '--model', M(ws), '--format', 'gguf', '--out', `${OUT(ws)}.gguf`],
    'export-st': (ws) => ['export', '--model', M(ws), '--format', 'safetensors', '--out', OUT(ws)],
  },
  bert: {
    eval: (ws) => ['eval', '--model', M(ws), '--cls', path.join(ws, 'cls.jsonl'), '--seq', '16'],
    finetune: (ws) => ['finetune', '--model', M(ws), '--train', path.join(ws, 'cls.jsonl'), '--dev', path.join(ws, 'cls.jsonl'),
      '--max-steps', '1', '--max-len', '16', '--out', OUT(ws)],
    qat: (ws) => ['qat', '--teacher', M(ws), '--task', path.join(ws, 'cls.jsonl'), '--dev', path.join(ws, 'cls.jsonl'), '--steps', '1',
      '--seq-len', '16', '--batch', '2', '--quant', 'twn', '--out', OUT(ws)],
    quantize: (ws) => ['quantize', '--model', M(ws), '--quant', 'twn', '--out', OUT(ws), '--json'],
  },
  student: {
    eval: (ws) => ['eval', '--model', M(ws), '--text', path.join(ws, 'text.txt'), '--seq', '16'],
    'export-gguf': (ws) => ['export', '--model', M(ws), '--format', 'gguf', '--out', `${OUT(ws)}.gguf`],
    quantize: (ws) => ['quantize', '--model', M(ws), '--quant', 'w4-channel', '--out', OUT(ws), '--json'],
  },
};

/** Copies the data files every command of `kind` reads into ws. */
export function dataFor(ws: string, base: Base): void {
  fs.copyFileSync(base.text, path.join(ws, 'text.txt'));
  fs.copyFileSync(base.clsJsonl, path.join(ws, 'cls.jsonl'));
}
