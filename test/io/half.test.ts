import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16BitsToF32Bits, bf16ToF32Array, f16BitsToF32Bits, f16ToF32Array, f32BitsToBf16Bits,
  f32BitsToF16Bits, f32ToBf16Array, f32ToF16Array, fromBf16, fromF16, toBf16, toF16,
} from '../../src/io/half.js';
import { Rng } from '../../src/tensor/rng.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsToNum = (b: number): number => ((u32[0] = b), f32[0]);
const numToBits = (x: number): number => ((f32[0] = x), u32[0]);

/** Independent decoding of f16 bits from the IEEE 754 definition. */
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// Positive f16 values in increasing order, plus 0x7c00 standing for 2^16: rounding up past
// 65504 by at least half an ulp gives inf, exactly like rounding to a virtual 65536.
const POS: number[] = [];
for (let h = 0; h <= 0x7c00; h++) POS.push(h === 0x7c00 ? 65536 : f16Value(h));

/** Reference f32 → f16: nearest of all f16 values by binary search, ties to the even pattern. */
function refF16(x: number): number {
  if (Number.isNaN(x)) return -1;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65536) return sign | 0x7c00;
  let lo = 0, hi = 0x7c00; // POS[lo] ≤ a < POS[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (POS[mid] <= a) lo = mid; else hi = mid;
  }
  const dl = a - POS[lo], dh = POS[hi] - a;
  const h = dl < dh ? lo : dh < dl ? hi : (lo & 1 ? hi : lo);
  return sign | h;
}

test('f16 → f32 is exact for all 65536 patterns and round-trips to the same bits', () => {
  const all = new Uint16Array(65536);
  for (let h = 0; h < 65536; h++) all[h] = h;
  const back = f32ToF16Array(f16ToF32Array(all));
  for (let h = 0; h < 65536; h++) {
    const v = bitsToNum(f16BitsToF32Bits(h));
    const want = f16Value(h);
    if (Number.isNaN(want)) {
      assert.ok(Number.isNaN(v), `0x${h.toString(16)} should decode to NaN`);
      assert.equal(back[h], h | 0x200, `NaN 0x${h.toString(16)} comes back quiet, payload kept`);
    } else {
      assert.ok(Object.is(v, want), `0x${h.toString(16)}: got ${v}, want ${want}`);
      assert.equal(back[h], h, `round trip of 0x${h.toString(16)}`);
    }
  }
});

test('f32 → f16 rounds to nearest even (midpoints, neighbours, random patterns)', () => {
  const check = (b: number): void => {
    const x = bitsToNum(b);
    const got = f32BitsToF16Bits(b);
    if (Number.isNaN(x)) {
      assert.equal(got & 0x7e00, 0x7e00, 'NaN → quiet NaN');
      assert.equal(got & 0x8000, (b >>> 16) & 0x8000, 'NaN keeps its sign');
      return;
    }
    assert.equal(got, refF16(x), `f32 ${x} (0x${b.toString(16)})`);
  };
  // Every midpoint between consecutive f16 values (exact in f32) and its f32 neighbours.
  for (let h = 0; h < 0x7c00; h++) {
    const mid = numToBits((POS[h] + POS[h + 1]) / 2);
    for (const b of [mid - 1, mid, mid + 1, numToBits(POS[h])]) {
      check(b >>> 0);
      check((b | 0x80000000) >>> 0);
    }
  }
  const rng = new Rng(7);
  for (let i = 0; i < 300_000; i++) check(rng.nextU32());
  // Exponents near the f16 range, where the interesting cases are.
  for (let i = 0; i < 300_000; i++) {
    const exp = 98 + rng.int(46); // 2^-29 .. 2^16
    check(((rng.nextU32() & 0x807fffff) | (exp << 23)) >>> 0);
  }
});

test('f16 edge values', () => {
  assert.equal(toF16(65504), 0x7bff);
  assert.equal(toF16(65519.99), 0x7bff); // below the midpoint to 2^16
  assert.equal(toF16(65520), 0x7c00); // the midpoint ties to even: inf
  assert.equal(toF16(1e9), 0x7c00);
  assert.equal(toF16(-Infinity), 0xfc00);
  assert.equal(toF16(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(toF16(2 ** -25), 0x0000); // half of it ties to even: 0
  assert.equal(toF16(2 ** -25 * 1.0001), 0x0001);
  assert.equal(toF16(3 * 2 ** -25), 0x0002); // 1.5 steps ties to 2
  assert.equal(toF16(2 ** -14 - 2 ** -25), 0x0400); // largest subnormal + half rounds up to normal
  assert.equal(toF16(-0), 0x8000);
  assert.equal(toF16(1 + 2 ** -11), 0x3c00); // tie, even stays
  assert.equal(toF16(1 + 3 * 2 ** -11), 0x3c02); // tie, odd rounds up
  assert.equal(fromF16(0x7bff), 65504);
  assert.equal(fromF16(0x0001), 2 ** -24);
  assert.ok(Object.is(fromF16(0x8000), -0));
  assert.ok(Number.isNaN(fromF16(0x7e00)));
});

test('bf16: all 65536 patterns round-trip; f32 → bf16 rounds to nearest even', () => {
  const all = new Uint16Array(65536);
  for (let h = 0; h < 65536; h++) all[h] = h;
  const back = f32ToBf16Array(bf16ToF32Array(all));
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
    assert.equal(back[h], isNaN ? h | 0x40 : h, `bf16 0x${h.toString(16)}`);
    assert.equal(bf16BitsToF32Bits(h), h * 65536);
  }
  const rng = new Rng(11);
  for (let i = 0; i < 300_000; i++) {
    const b = rng.nextU32();
    const x = bitsToNum(b);
    const got = f32BitsToBf16Bits(b);
    if (Number.isNaN(x)) { assert.ok(Number.isNaN(fromBf16(got))); continue; }
    // Reference: the two bf16 candidates around x, compared in double precision.
    const lo = (b & 0xffff0000) >>> 0, hi = lo + 0x10000;
    const vLo = bitsToNum(lo), vHi = (lo & 0x7fffffff) === 0x7f7f0000 ? Math.sign(x) * 2 ** 128
      : bitsToNum(hi >>> 0);
    const dl = Math.abs(x - vLo), dh = Math.abs(vHi - x);
    const want = dl < dh ? lo >>> 16 : dh < dl ? hi >>> 16 : ((lo >>> 16) & 1 ? hi >>> 16 : lo >>> 16);
    assert.equal(got, want & 0xffff, `bf16 of ${x} (0x${b.toString(16)})`);
  }
  // Ties: 1 + 2^-8 is halfway between 1 and 1 + 2^-7: even (1) wins; 1 + 3·2^-8 goes up.
  assert.equal(toBf16(1 + 2 ** -8), 0x3f80);
  assert.equal(toBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(toBf16(-0), 0x8000);
  assert.equal(toBf16(Infinity), 0x7f80);
  assert.equal(toBf16(3.3895313892515355e38), 0x7f7f); // bf16 max
  assert.equal(toBf16(3.4e38), 0x7f80); // rounds past bf16 max: inf
});

test('array converters check lengths and accept an output buffer', () => {
  const x = new Float32Array([1, -2, 0.5]);
  const out = new Uint16Array(3);
  assert.equal(f32ToF16Array(x, out), out);
  assert.deepEqual([...f16ToF32Array(out)], [1, -2, 0.5]);
  assert.throws(() => f32ToBf16Array(x, new Uint16Array(2)), /length/);
});
