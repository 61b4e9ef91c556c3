// Fuzz cases over the data and settings files the commands read: text corpora (--text, --data),
// classification JSONL/TSV (--cls, --train/--dev, --task/--dev), multiple-choice JSONL (--mc),
// quantization configs (--quant FILE) and run settings (--config FILE).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Rng } from '../../src/tensor/rng.js';
import { M, OUT, copyDir, type FuzzCase } from './case.js';
import type { Base } from './base.js';

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

function dataCase(category: string, what: string, cmd: string, file: string, field: string | string[], content: (base: Base, rng: Rng) => string | Buffer | null,
  argv: (ws: string, f: string) => string[], n: number, model: 'llama' | 'bert', rng: Rng): FuzzCase {
  let bytes: string | Buffer | null = null;
  return {
    id: `${category}/${what}/${cmd}#${n}`, category, expect: 'error', file: file.replace(/\/$/, ''), field: ([] as string[]).concat(field).join('\u0000'),
    setup(ws, base) {
      copyDir(base[model], M(ws));
      fs.copyFileSync(base.text, path.join(ws, 'text.txt'));
      fs.copyFileSync(base.clsJsonl, path.join(ws, 'cls.jsonl'));
      bytes ??= content(base, rng);
      if (file.endsWith('/')) fs.mkdirSync(path.join(ws, file), { recursive: true });
      else if (bytes !== null) fs.writeFileSync(path.join(ws, file), bytes);
    },
    run: { argv: (ws) => argv(ws, path.join(ws, file)) },
  };
}

// ---- text ---------------------------------------------------------------------------------------------

const TEXT_CMDS: [string, (ws: string, f: string) => string[]][] = [
  ['eval', (ws, f) => ['eval', '--model', M(ws), '--text', f, '--seq', '16']],
  ['qat', (ws, f) => ['qat', '--teacher', M(ws), '--data', f, '--steps', '1', '--seq-len', '16', '--batch', '1', '--out', OUT(ws)]],
];

export function textCases(rng: Rng, out: FuzzCase[]): void {
  const base = 'The river flows to the sea, and the sea sings back to the river.\n\n';
  const bad: [string, (r: Rng) => string | Buffer, string][] = [
    ['empty', () => '', 'empty'],
    ['whitespace', () => ' \n\n\t \n', 'empty'],
    ['invalid-utf8', (r) => { const b = Buffer.from(base.repeat(4)); b[r.int(b.length)] = pick(r, [0x80, 0xff, 0xfe, 0xc0, 0xf8]); return b; }, 'UTF-8'],
    ['truncated-utf8', () => Buffer.concat([Buffer.from(base), Buffer.from([0xe2, 0x82])]), 'UTF-8'],
    ['surrogate-utf8', () => Buffer.concat([Buffer.from(base), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(base)]), 'UTF-8'],
    ['overlong-utf8', () => Buffer.concat([Buffer.from(base), Buffer.from([0xc0, 0xaf]), Buffer.from(base)]), 'UTF-8'],
    ['nul-byte', (r) => { const s = base.repeat(3); const i = r.int(s.length); return Buffer.concat([Buffer.from(s.slice(0, i)), Buffer.from([0]), Buffer.from(s.slice(i))]); }, 'NUL'],
    ['binary', (r) => { const b = Buffer.alloc(2048); for (let i = 0; i < b.length; i++) b[i] = r.int(256); return b; }, 'UTF-8'],
    // UTF-16 with a byte-order mark is read (text.ts); without one, or with an unpaired surrogate, refused.
    ['utf16-no-bom', () => Buffer.from(base, 'utf16le'), 'UTF-16LE'],
    ['utf16-surrogate', () => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(base, 'utf16le'), Buffer.from([0x00, 0xd8]), Buffer.from(base, 'utf16le')]), 'UTF-16LE'],
    ['one-char', () => 'a', 'token'],
  ];
  for (const [what, content, field] of bad) {
    for (let n = 0; n < 4; n++) {
      const [cmd, argv] = pick(rng, TEXT_CMDS);
      out.push(dataCase('text', what, cmd, 'corpus.txt', ['corpus.txt', field], (_b, r) => content(r), argv, n, 'llama', rng));
    }
  }
  out.push(dataCase('text', 'is-a-directory', 'eval', 'dir/', 'dir', () => '', TEXT_CMDS[0][1], 0, 'llama', rng));
  out.push(dataCase('text', 'dir-without-txt', 'qat', 'dir/', ['dir', '.txt'], () => '', TEXT_CMDS[1][1], 0, 'llama', rng));
  out.push(dataCase('text', 'missing-file', 'eval', 'nothere.txt', 'nothere.txt', () => null, TEXT_CMDS[0][1], 0, 'llama', rng));
  // Conversations (src/data/chat.ts): malformed, or for a model without a chat template.
  const msg = { messages: [{ role: 'user', content: 'Where does the river go?' }, { role: 'assistant', content: 'To the sea.' }] };
  const chat: [string, string, string][] = [
    ['chat-no-template', `${J(msg)}\n${J(msg)}\n`, 'chat template'],
    ['chat-messages-string', `${J(msg)}\n${J({ messages: 'hello' })}\n`, 'messages'],
    ['chat-message-no-content', `${J(msg)}\n${J({ messages: [{ role: 'user' }] })}\n`, 'messages'],
    ['chat-sharegpt-role', `${J({ conversations: [{ from: 'narrator', value: 'x' }] })}\n`, 'from'],
    ['chat-prompt-mixed', `${J({ prompt: 'a', completion: [{ role: 'assistant', content: 'b' }] })}\n`, 'completion'],
    ['chat-layout-changes', `${J(msg)}\n${J({ text: 'plain' })}\n`, 'messages'],
    ['alpaca-output-number', `${J({ instruction: 'Name a river.', input: '', output: 7 })}\n`, 'output'],
    // One JSON array of objects (alpaca_data.json's form): cut short, or an element not an object.
    ['json-array-cut', `[${J(msg)},\n${J(msg)}`, 'JSON'],
    ['json-array-element', `[${J(msg)},\n 7]\n`, 'element'],
  ];
  // Parquet (src/data/parquet.ts): a file without a text column, a cut one, one that is not Parquet
  // at all; and a cut zstd shard.
  const pq = fs.readFileSync(new URL('../../test/fixtures/data/parquet/text-snappy.parquet', import.meta.url));
  const parquet: [string, (r: Rng) => Buffer, string][] = [
    ['parquet-no-text-column', () => fs.readFileSync(new URL('../../test/fixtures/data/parquet/notext.parquet', import.meta.url)), 'text column'],
    ['parquet-truncated', (r) => pq.subarray(0, pq.length - 8 - r.int(200)), 'Parquet'],
    ['parquet-not-parquet', () => Buffer.from('{"text": "JSON, not Parquet"}\n'), 'Parquet'],
  ];
  // Arrow IPC (src/data/arrow.ts): the same three.
  const ar = fs.readFileSync(new URL('../../test/fixtures/data/arrow/chat.arrow', import.meta.url));
  const arrow: [string, (r: Rng) => Buffer, string][] = [
    ['arrow-no-text-column', () => fs.readFileSync(new URL('../../test/fixtures/data/arrow/notext.arrow', import.meta.url)), 'text column'],
    ['arrow-truncated', (r) => ar.subarray(0, ar.length - 8 - r.int(600)), 'Arrow'],
    ['arrow-not-arrow', () => Buffer.from('{"text": "JSON, not Arrow"}\n'), 'Arrow'],
  ];
  const zst = fs.readFileSync(new URL('../../test/fixtures/data/zstd/shard.jsonl.zst', import.meta.url));
  const compressed: [string, string, (r: Rng) => Buffer, string][] = [
    ...parquet.map(([what, content, field]) => [what, 'data.parquet', content, field] as [string, string, (r: Rng) => Buffer, string]),
    ...arrow.map(([what, content, field]) => [what, 'data.arrow', content, field] as [string, string, (r: Rng) => Buffer, string]),
    ['zstd-truncated', 'data.jsonl.zst', (r) => zst.subarray(0, zst.length - 20 - r.int(400)), 'zstd'],
  ];
  for (const [what, file, content, field] of compressed) {
    for (let n = 0; n < 2; n++) out.push(dataCase('text', what, TEXT_CMDS[n % 2][0], file, [file, field], (_b, r) => content(r), TEXT_CMDS[n % 2][1], n, 'llama', rng));
  }
  for (const [what, text, field] of chat) {
    for (let n = 0; n < 2; n++) {
      const [cmd, argv] = TEXT_CMDS[n % 2];
      out.push(dataCase('text', what, cmd, 'chat.jsonl', ['chat.jsonl', field], () => text, argv, n, 'llama', rng));
    }
  }
}

// ---- classification and multiple-choice files ---------------------------------------------------

const CLS_CMDS: [string, (ws: string, f: string) => string[]][] = [
  ['eval', (ws, f) => ['eval', '--model', M(ws), '--cls', f, '--seq', '16']],
  ['finetune-train', (ws, f) => ['finetune', '--model', M(ws), '--train', f, '--dev', path.join(ws, 'cls.jsonl'), '--max-steps', '1', '--max-len', '16', '--out', OUT(ws)]],
  ['finetune-dev', (ws, f) => ['finetune', '--model', M(ws), '--train', path.join(ws, 'cls.jsonl'), '--dev', f, '--max-steps', '1', '--max-len', '16', '--out', OUT(ws)]],
  ['qat-task', (ws, f) => ['qat', '--teacher', M(ws), '--task', f, '--dev', path.join(ws, 'cls.jsonl'), '--steps', '1', '--seq-len', '16', '--quant', 'twn', '--out', OUT(ws)]],
  ['qat-dev', (ws, f) => ['qat', '--teacher', M(ws), '--task', path.join(ws, 'cls.jsonl'), '--dev', f, '--steps', '1', '--seq-len', '16', '--quant', 'twn', '--out', OUT(ws)]],
];

const J = (o: unknown): string => JSON.stringify(o);
const good = (i: number): string => J({ text: `sentence number ${i} about the river`, label: i % 2 ? 'pos' : 'neg' });
const lines = (bad: string, at: number, n = 6): string => Array.from({ length: n }, (_, i) => (i === at ? bad : good(i))).join('\n') + '\n';

export function taskCases(rng: Rng, out: FuzzCase[]): void {
  const cls: [string, (r: Rng) => string | Buffer, string][] = [
    ['empty', () => '', 'empty'],
    ['blank-lines', () => '\n\n  \n', 'empty'],
    ['not-json', (r) => lines('{"text": "a", "label": ', r.int(6)), ':'],
    ['array-line', (r) => lines('["a", "pos"]', r.int(6)), 'object'],
    ['missing-text', (r) => lines(J({ label: 'pos' }), r.int(6)), '"text"'],
    ['missing-label', (r) => lines(J({ text: 'a river' }), r.int(6)), '"label"'],
    ['text-number', (r) => lines(J({ text: 5, label: 'pos' }), r.int(6)), '"text"'],
    ['text-empty', (r) => lines(J({ text: '  ', label: 'pos' }), r.int(6)), '"text"'],
    ['label-float', (r) => lines(J({ text: 'a river', label: 1.5 }), r.int(6)), '"label"'],
    ['label-null', (r) => lines(J({ text: 'a river', label: null }), r.int(6)), '"label"'],
    ['label-bool', (r) => lines(J({ text: 'a river', label: true }), r.int(6)), '"label"'],
    ['label-mixed', (r) => lines(J({ text: 'a river', label: 1 }), 1 + r.int(5)), 'label'],
    ['label-unseen', (r) => lines(J({ text: 'a river', label: 'neutral' }), r.int(6)), 'neutral'],
    ['text-pair-number', (r) => lines(J({ text: 'a river', text_pair: 3, label: 'pos' }), r.int(6)), 'text_pair'],
    ['binary', (r) => { const b = Buffer.alloc(512); for (let i = 0; i < b.length; i++) b[i] = r.int(256); b[0] = 0x7b; return b; }, 'UTF-8'],
    ['invalid-utf8', (r) => { const b = Buffer.from(lines(good(0), 0)); b[5 + r.int(20)] = 0xff; return b; }, 'UTF-8'],
    ['nul-in-line', (r) => lines(`{"text": "a\u0000b", "label": "pos"}`, r.int(6)), ':'],
    ['huge-line-unterminated', (r) => lines(`{"text": "${'river '.repeat(400_000 + r.int(100_000))}`, r.int(6)), ':'],
    ['huge-line-no-label', (r) => lines(J({ text: 'sea '.repeat(500_000 + r.int(100_000)) }), r.int(6)), '"label"'],
  ];
  for (const [what, content, field] of cls) {
    for (let n = 0; n < 3; n++) {
      const [cmd, argv] = pick(rng, CLS_CMDS);
      // label-unseen is only wrong where the labels are fixed: a dev file, or the model's own.
      if (what === 'label-unseen' && (cmd === 'finetune-train' || cmd === 'qat-task')) continue;
      out.push(dataCase('tasks', `cls-${what}`, cmd, 'data.jsonl', ['data.jsonl', field], (_b, r) => content(r), argv, n, 'bert', rng));
    }
  }
  for (const [cmd, argv] of CLS_CMDS) out.push(dataCase('tasks', 'cls-is-a-directory', cmd, 'data.jsonl/', 'directory', () => '', argv, 0, 'bert', rng));
  out.push(dataCase('tasks', 'mc-is-a-directory', 'eval-mc', 'items.jsonl/', 'directory', () => '', (ws, f) => ['eval', '--model', M(ws), '--mc', f, '--seq', '16'], 0, 'llama', rng));
  const tsv: [string, string, string][] = [
    ['tsv-empty', '', 'empty'], ['tsv-header-only', 'text\tlabel\n', 'no examples'],
    ['tsv-three-columns', 'a\tb\tc\nd\te\tf\n', 'columns'], ['tsv-extra-tab', 'text\tlabel\nthe river\tpos\nthe\tsea\tneg\n', ':3'],
    ['tsv-empty-label', 'text\tlabel\nthe river\t\nthe sea\tneg\n', 'label'], ['tsv-empty-text', 'text\tlabel\n \tpos\nthe sea\tneg\n', 'text'],
    ['tsv-unseen-label', 'text\tlabel\nthe river\tpos\nthe sea\tmaybe\n', 'maybe'],
  ];
  for (const [what, text, field] of tsv) {
    for (let n = 0; n < 2; n++) {
      const [cmd, argv] = pick(rng, what === 'tsv-unseen-label' ? [CLS_CMDS[0], CLS_CMDS[2], CLS_CMDS[4]] : CLS_CMDS);
      out.push(dataCase('tasks', what, cmd, 'data.tsv', ['data.tsv', field], () => text, argv, n, 'bert', rng));
    }
  }
  const mc: [string, string, string][] = [
    ['mc-not-json', '{"context": "a"', ':2'], ['mc-missing-choices', J({ context: 'a', label: 0 }), 'choices'],
    ['mc-choices-string', J({ context: 'a', choices: 'b c', label: 0 }), 'choices'], ['mc-one-choice', J({ context: 'a', choices: ['b'], label: 0 }), 'choices'],
    ['mc-label-range', J({ context: 'a', choices: ['b', 'c'], label: 2 }), 'label'], ['mc-label-string', J({ context: 'a', choices: ['b', 'c'], label: '0' }), 'label'],
    ['mc-duplicate-choices', J({ context: 'a', choices: ['b', 'b'], label: 0 }), 'choices'], ['mc-empty-choice', J({ context: 'a', choices: ['b', ' '], label: 0 }), 'choices'],
    ['mc-context-number', J({ context: 1, choices: ['b', 'c'], label: 0 }), 'context'], ['mc-id-number', J({ id: 3, context: 'a', choices: ['b', 'c'], label: 0 }), 'id'],
    ['mc-missing-label', J({ context: 'a', choices: ['b', 'c'] }), 'label'],
  ];
  out.push(dataCase('tasks', 'mc-empty', 'eval-mc', 'items.jsonl', ['items.jsonl', 'empty'], () => '',
    (ws, f) => ['eval', '--model', M(ws), '--mc', f, '--seq', '16'], 0, 'llama', rng));
  for (const [what, text, field] of mc) {
    for (let n = 0; n < 2; n++) {
      out.push(dataCase('tasks', what, 'eval-mc', 'items.jsonl', ['items.jsonl', field], () => `${J({ context: 'The sea', choices: ['sings', 'flows'], label: 0 })}\n${text}\n`,
        (ws, f) => ['eval', '--model', M(ws), '--mc', f, '--seq', '16'], n, 'llama', rng));
    }
  }
  // Rows of the Hugging Face datasets (src/data/mc-layouts.ts): a good first row picks the
  // layout, the second is broken in one field.
  const hs = { activity_label: 'Sailing', ctx_a: 'The ship leaves.', ctx_b: 'it', endings: ['sails.', 'sings.'], label: '0' };
  const arc = { question: 'What flows?', choices: { text: ['rivers', 'rocks'], label: ['A', 'B'] }, answerKey: 'A' };
  const wg = { sentence: 'The _ flows.', option1: 'river', option2: 'rock', answer: '1' };
  const copa = { premise: 'The river rose.', choice1: 'It rained.', choice2: 'It froze.', question: 'cause', label: 0 };
  const layouts: [string, object, object, string][] = [
    ['mc-hellaswag-endings-null', hs, { ...hs, endings: null }, 'endings'], ['mc-hellaswag-label-empty', hs, { ...hs, label: '' }, 'label'],
    ['mc-hellaswag-label-null', hs, { ...hs, label: null }, 'label'], ['mc-hellaswag-ending-brackets', hs, { ...hs, endings: ['[step]', 'b'] }, 'choice 0'],
    ['mc-arc-choices-null', arc, { ...arc, choices: null }, 'choices'], ['mc-arc-text-null', arc, { ...arc, choices: { text: null, label: ['A'] } }, 'text'],
    ['mc-arc-answer-unknown', arc, { ...arc, answerKey: 'E' }, 'answerKey'], ['mc-arc-answer-number', arc, { ...arc, answerKey: 1 }, 'answerKey'],
    ['mc-arc-missing-answer', arc, { question: 'q', choices: arc.choices }, 'answerKey'],
    ['mc-mmlu-answer-range', { question: 'q', choices: ['a', 'b'], answer: 0 }, { question: 'q', choices: ['a', 'b'], answer: 2 }, 'answer'],
    ['mc-mmlu-choices-numbers', { question: 'q', choices: ['a', 'b'], answer: 0 }, { question: 'q', choices: [1, 2], answer: 0 }, 'choices'],
    ['mc-winogrande-no-blank', wg, { ...wg, sentence: 'No blank.' }, 'sentence'], ['mc-winogrande-answer-null', wg, { ...wg, answer: null }, 'answer'],
    ['mc-copa-question', copa, { ...copa, question: 'why' }, 'question'], ['mc-copa-choice-number', copa, { ...copa, choice1: 3 }, 'choice1'],
    ['mc-copa-unlabelled', copa, { ...copa, label: -1 }, 'label'], ['mc-boolq-answer-string', { passage: 'p', question: 'q', answer: true }, { passage: 'p', question: 'q', answer: 'yes' }, 'answer'],
    ['mc-unknown-layout', { title: 'x', body: 'y' }, { title: 'x', body: 'y' }, 'layout'],
  ];
  for (const [what, first, bad, field] of layouts) {
    out.push(dataCase('tasks', what, 'eval-mc', 'items.jsonl', ['items.jsonl', field], () => `${J(first)}\n${J(bad)}\n`,
      (ws, f) => ['eval', '--model', M(ws), '--mc', f, '--seq', '16'], 0, 'llama', rng));
  }
}

// ---- --quant FILE and --config FILE -------------------------------------------------------------------

export function settingsCases(rng: Rng, out: FuzzCase[]): void {
  const w = (o: unknown): string => J({ weights: o });
  const quant: [string, string, string][] = [
    ['not-json', '{"weights": ', 'JSON'], ['array', '[]', 'object'], ['empty-object', '{}', 'weights'],
    ['rule-unknown', w({ rule: { kind: 'sym5' }, granule: 'channel' }), 'rule'], ['bits-1', w({ rule: { kind: 'sym', bits: 1 }, granule: 'channel' }), 'bits'],
    ['bits-9', w({ rule: { kind: 'asym', bits: 9 }, granule: 'channel' }), 'bits'], ['bits-string', w({ rule: { kind: 'sym', bits: '4' }, granule: 'channel' }), 'bits'],
    ['bits-float', w({ rule: { kind: 'sym', bits: 4.5 }, granule: 'channel' }), 'bits'], ['bits-missing', w({ rule: { kind: 'sym' }, granule: 'channel' }), 'bits'],
    ['granule-unknown', w({ rule: { kind: 'sym', bits: 4 }, granule: 'row' }), 'granule'], ['group-zero', w({ rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 0 } }), 'size'],
    ['group-not-divisor', w({ rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 7 } }), 'group'],
    ['group-huge', w({ rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 1 << 20 } }), 'group'],
    ['lsq-string', w({ rule: { kind: 'sym', bits: 4 }, granule: 'channel', lsq: 'yes' }), 'lsq'],
    ['lsq-twn', w({ rule: 'twn', granule: 'channel', lsq: true }), 'lsq'], ['clip-negative', w({ rule: { kind: 'sym', bits: 4 }, granule: 'channel', clip: -1 }), 'clip'],
    ['clip-string', w({ rule: { kind: 'sym', bits: 4 }, granule: 'channel', clip: 'x' }), 'clip'],
    ['q4_0-wrong-group', w({ rule: 'q4_0', granule: { kind: 'group', size: 64 } }), 'q4_0'],
    ['unknown-key', J({ weights: { rule: 'twn', granule: 'channel' }, weight: 1 }), 'weight'],
    ['overrides-not-array', J({ weights: { rule: 'twn', granule: 'channel' }, overrides: 5 }), 'overrides'],
    ['override-pattern-number', J({ weights: { rule: 'twn', granule: 'channel' }, overrides: [{ pattern: 5, quant: null }] }), 'pattern'],
    ['override-bits', J({ weights: { rule: 'twn', granule: 'channel' }, overrides: [{ pattern: 'q_proj', quant: { rule: { kind: 'sym', bits: 12 }, granule: 'channel' } }] }), 'bits'],
    ['modules-number', J({ weights: { rule: 'twn', granule: 'channel' }, modules: 5 }), 'modules'],
    ['modules-bad-regex', J({ weights: { rule: 'twn', granule: 'channel' }, modules: ['re:(('] }), 'modules'],
    ['activations-bits', J({ weights: { rule: 'twn', granule: 'channel' }, activations: { bits: 1 } }), 'activations'],
    ['activations-string', J({ weights: { rule: 'twn', granule: 'channel' }, activations: '8' }), 'activations'],
    ['preset-unknown', J({ preset: 'w5-channel' }), 'preset'],
  ];
  const qcmds: [string, (ws: string, f: string) => string[]][] = [
    ['quantize', (ws, f) => ['quantize', '--model', M(ws), '--quant', f, '--out', OUT(ws)]],
    ['qat', (ws, f) => ['qat', '--teacher', M(ws), '--data', path.join(ws, 'text.txt'), '--quant', f, '--steps', '1', '--seq-len', '16', '--out', OUT(ws)]],
  ];
  for (const [cmd, argv] of qcmds) out.push(dataCase('quant-json', 'is-a-directory', cmd, 'q.json/', 'directory', () => '', argv, 0, 'llama', rng));
  for (const [what, text, field] of quant) {
    for (let n = 0; n < 2; n++) {
      const [cmd, argv] = pick(rng, qcmds);
      out.push(dataCase('quant-json', what, cmd, 'q.json', ['q.json', field], () => text, argv, n, 'llama', rng));
    }
  }
  const run: [string, string, string, 'qat' | 'finetune'][] = [
    ['not-json', '{"steps": ', 'JSON', 'qat'], ['array', '[1]', 'object', 'qat'], ['unknown-key', J({ stepz: 5 }), 'stepz', 'qat'],
    ['steps-string', J({ steps: '5' }), 'steps', 'qat'], ['lr-string', J({ lr: 'fast' }), 'lr', 'qat'], ['loss-number', J({ loss: 5 }), 'loss', 'qat'],
    ['steps-zero', J({ steps: 0 }), 'steps', 'qat'], ['steps-negative', J({ steps: -3 }), 'steps', 'qat'], ['steps-float', J({ steps: 1.5 }), 'steps', 'qat'],
    ['batch-zero', J({ batch: 0 }), 'batch', 'qat'], ['lr-negative', J({ lr: -1 }), 'lr', 'qat'], ['tau-zero', J({ tau: 0 }), 'tau', 'qat'],
    ['warmup-negative', J({ warmup: -4 }), 'warmup', 'qat'], ['accumulate-zero', J({ accumulate: 0 }), 'accumulate', 'qat'],
    ['ft-unknown-key', J({ epoch: 1 }), 'epoch', 'finetune'], ['ft-epochs-string', J({ epochs: 'two' }), 'epochs', 'finetune'],
    ['ft-batch-zero', J({ batch: 0 }), 'batch', 'finetune'], ['ft-lr-zero', J({ lr: 0 }), 'lr', 'finetune'],
    ['ft-max-len-zero', J({ maxLen: 0 }), 'maxLen', 'finetune'], ['ft-warmup', J({ warmupRatio: 1.5 }), 'warmup', 'finetune'],
    ['ft-max-steps-negative', J({ maxSteps: -1 }), 'maxSteps', 'finetune'],
  ];
  run.push(['is-a-directory', '', 'directory', 'qat'], ['ft-is-a-directory', '', 'directory', 'finetune']);
  for (const [what, text, field, cmd] of run) {
    const argv = cmd === 'qat'
      ? (ws: string, f: string) => ['qat', '--teacher', M(ws), '--data', path.join(ws, 'text.txt'), '--config', f, '--seq-len', '16', '--out', OUT(ws),
        ...(what.startsWith('steps') ? [] : ['--steps', '1'])]
      : (ws: string, f: string) => ['finetune', '--model', M(ws), '--train', path.join(ws, 'cls.jsonl'), '--dev', path.join(ws, 'cls.jsonl'), '--config', f, '--out', OUT(ws),
        ...(what.includes('max-steps') ? [] : ['--max-steps', '1'])];
    out.push(dataCase('run-config', what, cmd, what.endsWith('is-a-directory') ? 'run.json/' : 'run.json', field, () => text, argv, 0, cmd === 'qat' ? 'llama' : 'bert', rng));
  }
}
