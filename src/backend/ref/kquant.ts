// Reference kernel 'fakeQuantGrid' (src/tensor/kernels.ts): llama.cpp K-quant fake quantization.
// The reference here IS the format's own: src/quant/formats.ts reproduces ggml-quants.c bit for
// bit, and that module depends on nothing but io/half, so importing it from the backend makes
// no cycle (and keeps one copy of the K-quant math). The native kernel (native/kquant.cc,
// kquant_impl.inc) is tested bitwise against this one (test/backend/kquant.test.ts).
import type { Kernels } from '../../tensor/kernels.js';
import { QuantRule } from '../../tensor/kernels.js';
import { FORMATS, FORMAT_LIST, gridQuantRef } from '../../quant/formats.js';
import { unpackK, K_LAYOUT, type KFormatName } from '../../quant/kunpack.js';
import { expectLength } from './nn.js';

// Rule id → K-quant, from the format table.
const K_RULES: Record<number, KFormatName> = Object.fromEntries(FORMAT_LIST.filter((f) => f.kernel.name === 'fakeQuantGrid')
  .map((f) => [f.kernel.ruleId, f.name as KFormatName]));

export const kquantKernels: Partial<Kernels> = {
  fakeQuantGrid(w, out, codes, scales, mins, rows, cols, rule) {
    const fn = 'fakeQuantGrid';
    const name = K_RULES[rule];
    if (!name) throw new RangeError(`${fn}: rule ${rule} is not a K-quant (q2_k … q6_k)`);
    if (cols % 256 !== 0) throw new RangeError(`${fn}: ${name} needs cols a multiple of 256, got ${cols}`);
    expectLength(fn, 'w', w, rows * cols);
    for (let i = 0; i < w.length; i++) {
      if (!Number.isFinite(w[i])) throw new RangeError(`${fn}: non-finite weight ${w[i]} at row ${Math.floor(i / cols)}, column ${i % cols}`);
    }
    // Rows hold whole super-blocks, so the matrix is one long row of blocks.
    const y = gridQuantRef(FORMATS[name], w);
    if (out) {
      expectLength(fn, 'out', out, rows * cols);
      out.set(y);
    }
    if (!codes) return;
    const L = K_LAYOUT[name], G = (rows * cols) / L.sub;
    expectLength(fn, 'codes', codes, rows * cols);
    if (!scales) throw new RangeError(`${fn}: codes need a scales buffer`);
    expectLength(fn, 'scales', scales, G);
    if (L.mins && !mins) throw new RangeError(`${fn}: ${name} needs a mins buffer`);
    const u = unpackK(name, FORMATS[name].quantizeRef(y));
    codes.set(u.codes);
    scales.set(u.scales);
    if (mins && u.mins) {
      expectLength(fn, 'mins', mins, G);
      mins.set(u.mins);
    }
  },
};
