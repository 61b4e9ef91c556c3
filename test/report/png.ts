// A minimal PNG decoder for the browser test's screenshots (no PNG decoder is among the
// dependencies): 8-bit greyscale, grey + alpha, RGB or RGBA, not interlaced — what Chromium
// writes. PNG spec §11 (chunks), §9 (filters); IDAT is one zlib stream.
import * as zlib from 'node:zlib';

export interface Png { width: number; height: number; channels: number; data: Uint8Array }

const SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

export function decodePng(buf: Uint8Array, name = 'png'): Png {
  if (buf.length < 8 || SIG.some((b, i) => buf[i] !== b)) throw new Error(`${name}: not a PNG (bad signature)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let width = 0, height = 0, channels = 0;
  const idat: Uint8Array[] = [];
  for (let p = 8; p + 8 <= buf.length;) {
    const len = view.getUint32(p), type = String.fromCharCode(...buf.subarray(p + 4, p + 8));
    const body = buf.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR') {
      width = view.getUint32(p + 8);
      height = view.getUint32(p + 12);
      const [depth, color, , , interlace] = body.subarray(8, 13);
      if (depth !== 8 || !(color in CHANNELS) || interlace !== 0) throw new Error(`${name}: unsupported PNG (bit depth ${depth}, colour type ${color}, interlace ${interlace})`);
      channels = CHANNELS[color];
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    p += 12 + len;
  }
  if (!channels) throw new Error(`${name}: no IHDR chunk`);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) throw new Error(`${name}: ${raw.length} bytes of image data, expected ${height * (stride + 1)}`);
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = out.subarray(y * stride, (y + 1) * stride), up = y > 0 ? out.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels] : 0, b = up ? up[i] : 0, c = up && i >= channels ? up[i - channels] : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (f !== 0) throw new Error(`${name}: row ${y} has unknown filter ${f}`);
      row[i] = (src[i] + pred) & 0xff;
    }
  }
  return { width, height, channels, data: out };
}

/** Pixels of the rectangle that are not near-white, and its distinct colours (RGB). */
export function inkOf(img: Png, r: { x: number; y: number; w: number; h: number }): { ink: number; pixels: number; colours: number } {
  const x0 = Math.max(0, Math.floor(r.x)), y0 = Math.max(0, Math.floor(r.y));
  const x1 = Math.min(img.width, Math.ceil(r.x + r.w)), y1 = Math.min(img.height, Math.ceil(r.y + r.h));
  const seen = new Set<number>();
  let ink = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const o = (y * img.width + x) * img.channels;
      const [R, G, B] = img.channels >= 3 ? [img.data[o], img.data[o + 1], img.data[o + 2]] : [img.data[o], img.data[o], img.data[o]];
      if (R < 235 || G < 235 || B < 235) ink++;
      seen.add((R << 16) | (G << 8) | B);
    }
  }
  return { ink, pixels: Math.max(0, x1 - x0) * Math.max(0, y1 - y0), colours: seen.size };
}
