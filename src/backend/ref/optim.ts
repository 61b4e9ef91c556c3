// Reference kernels, family 'optim': plain loops that define the semantics of
// src/tensor/kernels.ts. Clarity over speed; the native backend is tested against these.
// Each element is updated in double precision; p and the float32 state are rounded on store.
import type { Kernels } from '../../tensor/kernels.js';
import { expectLength } from './nn.js';

export const optimKernels: Partial<Kernels> = {
  adamw(p, g, m, v, lr, beta1, beta2, eps, wd, bc1, bc2) {
    for (const [name, buf] of [['g', g], ['m', m], ['v', v]] as const) {
      expectLength('adamw', name, buf, p.length);
    }
    if (!(bc1 > 0) || !(bc2 > 0)) {
      throw new RangeError('adamw: bias corrections bc1, bc2 must be > 0');
    }
    for (let i = 0; i < p.length; i++) {
      const pi = p[i] - lr * wd * p[i]; // decoupled weight decay (Loshchilov & Hutter 2019)
      const mi = beta1 * m[i] + (1 - beta1) * g[i];
      const vi = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      m[i] = mi;
      v[i] = vi;
      p[i] = pi - lr * (mi / bc1) / (Math.sqrt(vi / bc2) + eps);
    }
  },

  sgd(p, g, buf, lr, momentum, wd) {
    expectLength('sgd', 'g', g, p.length);
    if (buf) expectLength('sgd', 'buf', buf, p.length);
    for (let i = 0; i < p.length; i++) {
      const gi = wd !== 0 ? g[i] + wd * p[i] : g[i];
      if (buf) {
        const b = momentum * buf[i] + gi;
        buf[i] = b;
        p[i] = p[i] - lr * b;
      } else {
        p[i] = p[i] - lr * gi;
      }
    }
  },

  sumSquares(x) {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i] * x[i];
    return s;
  },
};
