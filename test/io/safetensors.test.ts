import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors, readSafetensors, writeSafetensors, type WriteTensor } from '../../src/io/safetensors.js';
import { fromBf16, fromF16 } from '../../src/io/half.js';
import { tmpDir } from '../util.js';

let dir = '';
before(() => { dir = tmpDir('st'); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });
let counter = 0;
const tmp = (name = 'f'): string => path.join(dir, `${name}-${counter++}.safetensors`);

/** Builds a raw file: 8-byte length (or `len`), header text, buffer bytes. */
function raw(header: unknown, buf: Uint8Array | number = 0, len?: bigint): string {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const b = typeof buf === 'number' ? new Uint8Array(buf) : buf;
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(len ?? BigInt(h.length));
  const p = tmp('raw');
  fs.writeFileSync(p, Buffer.concat([n, h, b]));
  return p;
}
const ent = (dtype: string, shape: unknown, data_offsets: unknown): object => ({ dtype, shape, data_offsets });
const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

test('round trip of every writable dtype, with edge values, scalars and empty tensors', () => {
  const edge = new Float32Array([0, -0, 1, -1.5, 65504, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 6.1e-5,
    Infinity, -Infinity, NaN, 1e-40, 3.4e38, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 0.1]);
  const f64 = new Float64Array([Math.PI, -1e300, Number.MIN_VALUE]);
  const p = tmp();
  const t: Record<string, WriteTensor> = {
    f32: { shape: [3, 6], data: edge },
    f16: { shape: [18], data: edge, dtype: 'F16' },
    bf16: { shape: [2, 9], data: edge, dtype: 'BF16' },
    f64: { shape: [3], data: f64 },
    i32: { shape: [2, 2], data: new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31)]) },
    i64: { shape: [3], data: new Int32Array([5, -6, 2 ** 31 - 1]), dtype: 'I64' },
    i16: { shape: [2], data: new Int16Array([-32768, 7]) },
    i8: { shape: [2], data: new Int8Array([-128, 127]) },
    u8: { shape: [3], data: new Uint8Array([0, 200, 255]) },
    bool: { shape: [2], data: new Uint8Array([1, 0]), dtype: 'BOOL' },
    scalar: { shape: [], data: new Float32Array([42]) },
    empty: { shape: [0, 5], data: new Float32Array(0) },
    ['__proto__']: { shape: [1], data: new Float32Array([7]) }, // an own key, not the prototype
  };
  writeSafetensors(p, t);
  const { tensors, metadata } = readSafetensors(p);
  assert.deepEqual(metadata, {});
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(t).sort());
  const f32 = tensors.get('f32')!;
  assert.equal(f32.dtype, 'F32');
  assert.deepEqual(f32.shape, [3, 6]);
  assert.ok(sameBits(f32.data as Float32Array, edge), 'F32 is bit-exact');
  const f16 = tensors.get('f16')!.data as Float32Array;
  // 65520 ties to even → inf; 2^-25 ties → 0; 3·2^-25 ties → 2·2^-24; 6.1e-5 is an f16 subnormal.
  const want16 = [0, -0, 1, -1.5, 65504, Infinity, 2 ** -24, 0, 2 * 2 ** -24, fromF16(1023),
    Infinity, -Infinity, NaN, 0, Infinity, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 0.0999755859375];
  for (let i = 0; i < want16.length; i++) assert.ok(Object.is(f16[i], want16[i]), `F16[${i}]: ${f16[i]} vs ${want16[i]}`);
  const bf = tensors.get('bf16')!.data as Float32Array;
  assert.equal(bf[15], 1, 'bf16 tie to even (down)');
  assert.equal(bf[16], 1 + 2 ** -6, 'bf16 tie to even (up)');
  assert.equal(bf[17], fromBf16(0x3dcd));
  assert.ok(Object.is(bf[1], -0) && Number.isNaN(bf[12]) && bf[10] === Infinity);
  assert.deepEqual(tensors.get('f64')!.data, f64);
  assert.deepEqual(tensors.get('i32')!.data, new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31)]));
  assert.deepEqual(tensors.get('i64')!.data, new Int32Array([5, -6, 2 ** 31 - 1]));
  assert.equal(tensors.get('i64')!.dtype, 'I64');
  assert.deepEqual(tensors.get('i16')!.data, new Int16Array([-32768, 7]));
  assert.deepEqual(tensors.get('i8')!.data, new Int8Array([-128, 127]));
  assert.deepEqual(tensors.get('u8')!.data, new Uint8Array([0, 200, 255]));
  assert.deepEqual(tensors.get('bool')!, { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) });
  assert.deepEqual(tensors.get('scalar')!, { dtype: 'F32', shape: [], data: new Float32Array([42]) });
  assert.deepEqual(tensors.get('empty')!.shape, [0, 5]);
  assert.deepEqual(tensors.get('__proto__')!.data, new Float32Array([7]));
  // Read options: bigint for 64-bit ints, float32 for everything.
  const f = openSafetensors(p);
  assert.deepEqual(f.read('i64', { int64: 'bigint' }).data, new BigInt64Array([5n, -6n, 2147483647n]));
  assert.deepEqual(f.read('u8', { float32: true }).data, new Float32Array([0, 200, 255]));
  f.close();
});

test('layout: space-padded header, 8-byte aligned, tensors aligned to their element size', () => {
  const p = tmp();
  writeSafetensors(p, { a: { shape: [2], data: new Float32Array([1, 2]) } });
  const bytes = fs.readFileSync(p);
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes → padded to 56
  const expect = Buffer.concat([Buffer.from([56, 0, 0, 0, 0, 0, 0, 0]), Buffer.from(json + '  '),
    Buffer.from(new Float32Array([1, 2]).buffer)]);
  assert.deepEqual(bytes, expect);
  const q = tmp();
  writeSafetensors(q, {
    b: { shape: [3], data: new Uint8Array(3) }, h: { shape: [1], data: new Float32Array(1), dtype: 'F16' },
    d: { shape: [1], data: new Float64Array(1) }, w: { shape: [1], data: new Int32Array(1) },
  });
  const f = openSafetensors(q);
  assert.equal(f.dataStart % 8, 0);
  for (const n of f.names()) {
    const i = f.info(n);
    assert.equal(i.begin % { F64: 8, I32: 4, F16: 2, U8: 1 }[i.dtype as 'F64'], 0, `${n} aligned`);
  }
  f.close();
});

test('metadata round trip; non-string metadata is refused', () => {
  const p = tmp();
  const metadata = { format: 'pt', config: JSON.stringify({ hidden: 64 }), 'ünï': 'cödé' };
  writeSafetensors(p, { x: { shape: [1], data: new Float32Array([1]) } }, { metadata });
  assert.deepEqual(readSafetensors(p).metadata, metadata);
  assert.throws(() => writeSafetensors(tmp(), {}, { metadata: { a: 1 as unknown as string } }), /metadata "a" must be a string/);
  const bad = raw({ __metadata__: { a: 1 } });
  assert.throws(() => openSafetensors(bad), (e: Error) => e.message.startsWith(bad) && /__metadata__\["a"\] is not a string/.test(e.message));
});

test('lazy reader: names, info, one tensor at a time, clear errors', () => {
  const p = tmp();
  writeSafetensors(p, { a: { shape: [2], data: new Float32Array([1, 2]) }, b: { shape: [1], data: new Int32Array([3]) } });
  const f = openSafetensors(p);
  assert.deepEqual(f.names().sort(), ['a', 'b']);
  assert.deepEqual(f.info('b'), { name: 'b', dtype: 'I32', shape: [1], begin: 8, end: 12 });
  assert.deepEqual(f.read('b').data, new Int32Array([3]));
  assert.throws(() => f.read('zz'), /no tensor "zz" \(has 2: a, b\)/);
  f.close();
  assert.throws(() => f.read('a'), /already closed/);
  assert.deepEqual([...readSafetensors(p, { names: ['a'] }).tensors.keys()], ['a']);
});

test('positions past 2 GiB and 4 GiB work (sparse 5 GiB file, only the tail tensor read)', (t) => {
  const big = 5 * 2 ** 30;
  const header = JSON.stringify({ pad: ent('U8', [big], [0, big]), tail: ent('F32', [2], [big, big + 8]) });
  const p = raw(header);
  const fd = fs.openSync(p, 'r+');
  try {
    fs.ftruncateSync(fd, 8 + header.length + big + 8);
    fs.writeSync(fd, new Uint8Array(new Float32Array([3.5, -1]).buffer), 0, 8, 8 + header.length + big);
  } finally { fs.closeSync(fd); }
  if (fs.statSync(p).blocks * 512 > 2 ** 26) { fs.rmSync(p); assert.fail('the temp folder does not support sparse files; this test needs them (5 GiB apparent size)'); }
  const f = openSafetensors(p);
  assert.deepEqual(f.read('tail').data, new Float32Array([3.5, -1]));
  assert.equal(f.info('pad').end, big);
  f.close();
  fs.rmSync(p);
});

test('malformed files: each gives a clear error naming the file', () => {
  const cases: [string, string, RegExp][] = [];
  const add = (what: string, p: string, re: RegExp): void => { cases.push([what, p, re]); };
  const p0 = tmp('short'); fs.writeFileSync(p0, Buffer.from([1, 2, 3]));
  add('short', p0, /3 bytes, shorter than the 8-byte header length/);
  add('len > file', raw('{}', 0, 1000n), /header length 1000 runs past the end of the 10-byte file/);
  add('absurd len', raw('{}', 0, 2n ** 40n), /header length 1099511627776 is absurd/);
  add('not JSON', raw('{"a": '), /header is not valid UTF-8 JSON/);
  add('not object', raw('[1, 2]'), /does not start with '\{' \(it must be a JSON object\)/);
  add('not UTF-8', raw(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1')), /not valid UTF-8 JSON/);
  add('entry not object', raw({ a: 5 }), /tensor "a": entry is not an object/);
  add('no dtype', raw({ a: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor "a": missing "dtype"/);
  add('no shape', raw({ a: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /tensor "a": missing "shape"/);
  add('no offsets', raw({ a: { dtype: 'F32', shape: [1] } }, 4), /tensor "a": missing "data_offsets"/);
  add('unknown dtype', raw({ w: ent('F7', [1], [0, 4]) }, 4), /tensor "w": unknown dtype "F7"/);
  add('negative dim', raw({ a: ent('F32', [-1], [0, 4]) }, 4), /tensor "a": bad shape \[-1\]/);
  add('fractional dim', raw({ a: ent('F32', [1.5], [0, 4]) }, 4), /tensor "a": bad shape \[1.5\]/);
  add('shape not array', raw({ a: ent('F32', 3, [0, 12]) }, 12), /tensor "a": shape must be an array/);
  add('offsets reversed', raw({ a: ent('F32', [1], [4, 0]) }, 4), /data_offsets must be \[begin, end\]/);
  add('offsets not numbers', raw({ a: ent('F32', [1], ['0', 4]) }, 4), /data_offsets must be/);
  add('out of buffer', raw({ a: ent('F32', [2], [0, 8]) }, 4), /\[0, 8\] run past the 4-byte buffer/);
  add('size mismatch', raw({ a: ent('F32', [3], [0, 8]) }, 8), /8 bytes for F32 \[3\], expected 12/);
  add('overlap', raw({ a: ent('F32', [2], [0, 8]), b: ent('F32', [1], [4, 8]) }, 8), /"b" data_offsets \[4, 8\] overlap the previous tensor/);
  add('hole', raw({ a: ent('F32', [1], [0, 4]), b: ent('F32', [1], [8, 12]) }, 12), /bytes \[4, 8\) .*\(a hole before "b": its data_offsets are wrong\)/);
  add('trailing bytes', raw({ a: ent('F32', [1], [0, 4]) }, 6), /bytes \[4, 6\) at the end .* belong to no tensor/);
  add('empty header', raw('', 4), /does not start with '\{'/);
  for (const [what, p, re] of cases) {
    assert.throws(() => openSafetensors(p), (e: Error) => {
      assert.ok(e.message.startsWith(p), `${what}: error should name the file: ${e.message}`);
      assert.match(e.message, re, what);
      return true;
    }, what);
  }
  // A valid spec dtype we cannot decode: fails on read, naming file, tensor and dtype.
  const f8 = raw({ q: ent('F8_E4M3', [2], [0, 2]) }, 2);
  const f = openSafetensors(f8);
  assert.throws(() => f.read('q'), (e: Error) => e.message.startsWith(f8) && /"q" has dtype F8_E4M3/.test(e.message));
  f.close();
  const i64 = raw({ big: ent('I64', [1], [0, 8]) }, new Uint8Array(new BigInt64Array([2n ** 40n]).buffer));
  assert.throws(() => readSafetensors(i64), /"big" \(I64\): element 0 = 1099511627776 does not fit in int32/);
});

test('write: refuses to overwrite without force; force replaces', () => {
  const p = tmp();
  const one = { x: { shape: [1], data: new Float32Array([1]) } };
  writeSafetensors(p, one);
  assert.throws(() => writeSafetensors(p, { x: { shape: [1], data: new Float32Array([2]) } }),
    (e: Error) => e.message.startsWith(p) && /already exists.*use --force/.test(e.message));
  assert.deepEqual(readSafetensors(p).tensors.get('x')!.data, new Float32Array([1]));
  writeSafetensors(p, { x: { shape: [1], data: new Float32Array([2]) } }, { force: true });
  assert.deepEqual(readSafetensors(p).tensors.get('x')!.data, new Float32Array([2]));
});

test('write is atomic: an error mid-write leaves no file and no temp file behind', () => {
  const sub = fs.mkdtempSync(path.join(dir, 'atomic-'));
  const p = path.join(sub, 'out.safetensors');
  const boom: WriteTensor = { shape: [4], data: () => { throw new Error('boom'); }, dtype: 'F32' };
  const good: WriteTensor = { shape: [2, 3], data: new Float32Array(6).fill(1) };
  assert.throws(() => writeSafetensors(p, { a: good, z: boom }), /boom/);
  assert.deepEqual(fs.readdirSync(sub), []);
  assert.throws(() => writeSafetensors(p, { a: good, b: { shape: [5], data: () => new Float32Array(4), dtype: 'F32' } }),
    /tensor "b": data has 4 elements, shape needs 5/);
  assert.deepEqual(fs.readdirSync(sub), []);
  // With force over an existing file, a failed write keeps the old file intact.
  writeSafetensors(p, { a: good });
  const before = fs.readFileSync(p);
  assert.throws(() => writeSafetensors(p, { a: good, z: boom }, { force: true }), /boom/);
  assert.deepEqual(fs.readFileSync(p), before);
  assert.deepEqual(fs.readdirSync(sub), ['out.safetensors']);
  // Lazy data that succeeds is written like eager data.
  writeSafetensors(p, { a: { shape: [2], data: () => new Float32Array([5, 6]) , dtype: 'BF16' } }, { force: true });
  assert.deepEqual(readSafetensors(p).tensors.get('a')!.data, new Float32Array([5, 6]));
});

test('write: dtype selection and input validation', () => {
  const p = tmp();
  const x = new Float32Array([1.0009765625, 2]);
  writeSafetensors(p, { a: { shape: [2], data: x }, b: { shape: [2], data: x } }, { dtype: { a: 'F16' } });
  const f = openSafetensors(p);
  assert.equal(f.info('a').dtype, 'F16');
  assert.equal(f.info('b').dtype, 'F32');
  f.close();
  const q = tmp();
  writeSafetensors(q, { a: { shape: [2], data: x } }, { dtype: 'BF16' });
  assert.deepEqual(readSafetensors(q).tensors.get('a')!.data, new Float32Array([1, 2]));
  const bad = (t: Record<string, WriteTensor>, re: RegExp, o = {}): void => {
    const r = tmp();
    assert.throws(() => writeSafetensors(r, t, o), (e: Error) => e.message.startsWith(r) && re.test(e.message));
    assert.equal(fs.existsSync(r), false);
  };
  bad({ a: { shape: [3], data: x } }, /"a": data has 2 elements, shape needs 3/);
  bad({ a: { shape: [-2], data: x } }, /"a": bad shape/);
  bad({ a: { shape: [2], data: x, dtype: 'I32' } }, /cannot write Float32Array as I32/);
  bad({ a: { shape: [2], data: x } }, /cannot write dtype F8_E4M3/, { dtype: 'F8_E4M3' });
  bad({ a: { shape: [1], data: new Uint16Array(1) } }, /not inferable/);
  bad({ a: { shape: [2], data: new Uint8Array([0, 2]), dtype: 'BOOL' } }, /BOOL values must be 0 or 1/);
  bad({ __metadata__: { shape: [1], data: new Float32Array(1) } }, /invalid tensor name/);
});
