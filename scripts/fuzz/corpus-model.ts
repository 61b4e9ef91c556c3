// Fuzz cases over the files of a model directory: model.safetensors (header and payload),
// config.json, tokenizer.json, tokenizer_config.json, and a student's quantization.json and
// model.quantized.safetensors. One mutation per case, chosen by a seeded Rng.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../../src/tensor/rng.js';
import { stAppend, stBuild, stNames, stParse, stRemove, type Base, type StEntry, type StFile } from './base.js';
import { COMMANDS, M, copyDir, dataFor, type FuzzCase, type Kind } from './case.js';

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
const DIRS: Record<Kind, keyof Base> = { llama: 'llama', bert: 'bert', student: 'student' };

/** A case that mutates `file` of a copy of the `kind` model directory, then runs `cmd`. */
function modelCase(category: string, what: string, kind: Kind, cmd: string, file: string, field: string | string[],
  mutate: (m: string, base: Base) => void, n: number, from: keyof Base = DIRS[kind]): FuzzCase {
  return {
    id: `${category}/${what}/${kind}-${cmd}#${n}`, category, expect: 'error', file: path.basename(file),
    field: ([] as string[]).concat(field).join('\u0000'),
    setup(ws, base) {
      copyDir(base[from] as string, M(ws));
      dataFor(ws, base);
      mutate(M(ws), base);
    },
    run: { argv: COMMANDS[kind][cmd] },
  };
}

const cmdOf = (rng: Rng, kind: Kind): string => pick(rng, Object.keys(COMMANDS[kind]));

// ---- safetensors --------------------------------------------------------------------------------

type StMut = (f: Buffer, rng: Rng) => { bytes: Buffer; field: string | string[] } | null;

const entry = (st: StFile, name: string): StEntry => st.header[name] as StEntry;
const withEntry = (st: StFile, name: string, e: Record<string, unknown>): Buffer => stBuild({ header: { ...st.header, [name]: e }, data: st.data });
const floatNames = (st: StFile): string[] => stNames(st).filter((n) => ['F32', 'F16', 'BF16'].includes(entry(st, n).dtype));

const ST_MUTATIONS: Record<string, StMut> = {
  'short-file': (f, rng) => ({ bytes: f.subarray(0, rng.int(8)), field: 'header' }),
  'header-length-huge': (f, rng) => {
    const b = Buffer.from(f);
    b.writeBigUInt64LE(pick(rng, [100_000_001n, 1n << 40n, (1n << 64n) - 1n, 1n << 63n]));
    return { bytes: b, field: 'header length' };
  },
  'header-length-past-end': (f, rng) => {
    const b = Buffer.from(f);
    b.writeBigUInt64LE(BigInt(f.length - 8 + 1 + rng.int(1000)));
    return { bytes: b, field: 'header length' };
  },
  'header-length-short': (f, rng) => {
    const b = Buffer.from(f);
    const n = Number(b.readBigUInt64LE(0));
    b.writeBigUInt64LE(BigInt(Math.max(0, n - 1 - rng.int(Math.min(200, n)))));
    return { bytes: b, field: 'header' };
  },
  'header-not-object': (f, rng) => {
    const st = stParse(f);
    return { bytes: stBuild(st, pick(rng, ['[1, 2]', ' {}', 'null', '"x"', 'x{}'])), field: 'header' };
  },
  'header-bad-json': (f, rng) => {
    const st = stParse(f);
    const t = JSON.stringify(st.header);
    const cut = 1 + rng.int(t.length - 2);
    return { bytes: stBuild(st, t.slice(0, cut) + pick(rng, ['', ',', '}}', '\u0000', ']'])), field: 'header' };
  },
  'header-bad-utf8': (f, rng) => {
    const st = stParse(f);
    const b = stBuild(st);
    const n = Number(b.readBigUInt64LE(0));
    b[8 + 1 + rng.int(n - 2)] = pick(rng, [0xff, 0xc0, 0x80, 0xfe]);
    return { bytes: b, field: 'header' };
  },
  'entry-not-object': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, stNames(st));
    return { bytes: withEntry(st, name, pick(rng, [5, 'F32', [1], null]) as never), field: name };
  },
  'key-missing': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, stNames(st));
    const key = pick(rng, ['dtype', 'shape', 'data_offsets']);
    const e: Record<string, unknown> = { ...entry(st, name) };
    delete e[key];
    return { bytes: withEntry(st, name, e), field: [name, key] };
  },
  'dtype-unknown': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, stNames(st));
    return { bytes: withEntry(st, name, { ...entry(st, name), dtype: pick(rng, ['f32', 'Q4_0', 'F8', 'float', 32, null, '']) }), field: [name, 'dtype'] };
  },
  'dtype-size-mismatch': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, stNames(st));
    const e = entry(st, name);
    const d = pick(rng, e.dtype === 'F32' ? ['F16', 'BF16', 'F64', 'I64', 'U8'] : ['F32', 'F64', 'I16']);
    return { bytes: withEntry(st, name, { ...e, dtype: d }), field: [name, d] };
  },
  'dtype-same-size': (f, rng) => {
    const st = stParse(f);
    const names = floatNames(st).filter((n) => entry(st, n).dtype === 'F32');
    if (!names.length) return null;
    const name = pick(rng, names);
    const d = pick(rng, ['I32', 'U32']);
    return { bytes: withEntry(st, name, { ...entry(st, name), dtype: d }), field: [name, d] };
  },
  'shape-invalid': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, stNames(st));
    const e = entry(st, name);
    const shape = pick(rng, [[-1, ...e.shape.slice(1)], [1.5], '32', { 0: 1 }, [e.shape[0], 'x'], [2 ** 53, 2 ** 53], null]);
    return { bytes: withEntry(st, name, { ...e, shape }), field: [name, 'shape'] };
  },
  'shape-numel-changed': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, stNames(st));
    const e = entry(st, name);
    const shape = pick(rng, [[...e.shape, 2], e.shape.slice(1), [e.shape[0] + 1, ...e.shape.slice(1)], []]);
    if (shape.reduce((a, b) => a * b, 1) === e.shape.reduce((a, b) => a * b, 1)) return null;
    return { bytes: withEntry(st, name, { ...e, shape }), field: name };
  },
  'shape-same-numel': (f, rng) => {
    const st = stParse(f);
    const names = floatNames(st).filter((n) => entry(st, n).shape.length === 2 && entry(st, n).shape[0] !== entry(st, n).shape[1]);
    if (!names.length) return null;
    const name = pick(rng, names);
    const e = entry(st, name);
    const shape = pick(rng, [[e.shape[1], e.shape[0]], [e.shape[0] * e.shape[1]], [...e.shape, 1]]);
    return { bytes: withEntry(st, name, { ...e, shape }), field: [name, 'shape'] };
  },
  'offsets-invalid': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, stNames(st));
    const e = entry(st, name);
    const [b, en] = e.data_offsets;
    const off = pick(rng, [[b], [b, en, 0], [en, b], [-1, en], [b + 0.5, en], [String(b), en], 'x', null, [b, 2 ** 60]]);
    if (JSON.stringify(off) === JSON.stringify([en, b]) && b === en) return null;
    return { bytes: withEntry(st, name, { ...e, data_offsets: off }), field: [name, 'data_offsets'] };
  },
  'offsets-out-of-range': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, stNames(st));
    const e = entry(st, name);
    const extra = 1 + rng.int(4096);
    return { bytes: withEntry(st, name, { ...e, data_offsets: [e.data_offsets[0] + extra, e.data_offsets[1] + extra] }), field: 'data_offsets' };
  },
  'offsets-overlap': (f, rng) => {
    const st = stParse(f);
    const names = stNames(st);
    const i = 1 + rng.int(names.length - 1);
    const prev = entry(st, names[i - 1]), e = entry(st, names[i]);
    const shift = Math.min(prev.data_offsets[1] - prev.data_offsets[0], 4 * (1 + rng.int(8)));
    return { bytes: withEntry(st, names[i], { ...e, data_offsets: [e.data_offsets[0] - shift, e.data_offsets[1] - shift] }), field: 'data_offsets' };
  },
  'offsets-duplicate': (f, rng) => {
    const st = stParse(f);
    const names = stNames(st);
    const a = pick(rng, names), b = pick(rng, names);
    const ea = entry(st, a), eb = entry(st, b);
    if (a === b || ea.dtype !== eb.dtype || JSON.stringify(ea.shape) !== JSON.stringify(eb.shape)) return null;
    return { bytes: withEntry(st, b, { ...eb, data_offsets: ea.data_offsets }), field: 'data_offsets' };
  },
  truncated: (f, rng) => ({ bytes: f.subarray(0, f.length - 1 - rng.int(Math.min(4096, f.length - 9))), field: 'truncated' }),
  'trailing-bytes': (f, rng) => ({ bytes: Buffer.concat([f, Buffer.alloc(1 + rng.int(64), 0xab)]), field: 'buffer' }),
  'metadata-invalid': (f, rng) => {
    const st = stParse(f);
    return { bytes: stBuild({ header: { ...st.header, __metadata__: pick(rng, [5, 'pt', [1], { format: 1 }, { format: { a: 'b' } }]) }, data: st.data }), field: '__metadata__' };
  },
  'nonfinite-payload': (f, rng) => {
    const st = stParse(f);
    const names = floatNames(st).filter((n) => entry(st, n).dtype === 'F32' && entry(st, n).shape.reduce((a, b) => a * b, 1) > 0);
    const name = pick(rng, names);
    const e = entry(st, name);
    const n = (e.data_offsets[1] - e.data_offsets[0]) / 4;
    const i = rng.int(n);
    const v = pick(rng, [NaN, Infinity, -Infinity]);
    const data = Buffer.from(st.data);
    data.writeFloatLE(v, e.data_offsets[0] + 4 * i);
    return { bytes: stBuild({ header: st.header, data }), field: [name, String(i)] };
  },
  'tensor-missing': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, stNames(st));
    return { bytes: stBuild(stRemove(st, name)), field: name };
  },
  'tensor-extra': (f, rng) => {
    const st = stParse(f);
    const name = pick(rng, ['model.layers.7.self_attn.q_proj.weight', 'extra.weight', 'model.layers.0.mlp.gate.bias', 'lm_head.bias']);
    return { bytes: stBuild(stAppend(st, name, 'F32', [4], Buffer.alloc(16))), field: name };
  },
};

/** A case that writes the mutated bytes of `file` (mutation `what` under sub-seed `seed`). The
 *  mutation runs once now, on the base file, for its field, and again at setup. */
function stCase(base: Base, what: string, kind: Kind, cmd: string, file: string, seed: number, n: number, from?: keyof Base): FuzzCase | null {
  const src = path.join(base[from ?? DIRS[kind]] as string, file);
  const r = ST_MUTATIONS[what](fs.readFileSync(src), new Rng(seed));
  if (!r) return null;
  return modelCase('safetensors', what, kind, cmd, file, r.field, (m) => {
    fs.writeFileSync(path.join(m, file), ST_MUTATIONS[what](fs.readFileSync(src), new Rng(seed))!.bytes);
  }, n, from);
}

export function safetensorsCases(rng: Rng, base: Base, count: number): FuzzCase[] {
  const out: FuzzCase[] = [];
  const muts = Object.keys(ST_MUTATIONS);
  for (let n = 0; out.length < count; n++) {
    const what = muts[n % muts.length];
    const kind = pick(rng, ['llama', 'llama', 'bert', 'student'] as Kind[]);
    // A student has two weight files; mutate either.
    const file = kind === 'student' && rng.int(2) === 0 ? 'model.quantized.safetensors' : 'model.safetensors';
    const c = stCase(base, what, kind, cmdOf(rng, kind), file, rng.nextU32(), n);
    if (c) out.push(c);
  }
  return out;
}
