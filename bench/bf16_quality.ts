// KD-QAT quality with bf16 GEMMs: the same short run (a decoder teacher, default
// teachers/llama-sotu, SOTU, w4-channel, logits KL) with each --bf16 mode (default off and all) per
// seed, evaluated in float32 on the same validation windows; prints final KL and validation
// perplexity.
// Usage: npx tsx bench/bf16_quality.ts [steps] [seeds] [windows] [modes, e.g. off,teacher,all] [teacher dir]
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { runQat, QAT_DEFAULTS } from '../src/train/qat.js';

const [steps = 20, seeds = 3, windows = 16] = process.argv.slice(2, 5).map(Number);
const modes = (process.argv[5] ?? 'off,all').split(',') as ('off' | 'teacher' | 'all')[];
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bf16-quality-'));
const teacher = path.resolve(process.argv[6] ??
  path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'teachers', 'llama-sotu'));
for (let seed = 1; seed <= seeds; seed++) {
  for (const bf16 of modes) {
    const out = path.join(root, `s${seed}-${bf16}`);
    const t0 = performance.now();
    runQat({
      out, evaluate: 'periodic',
      config: { ...QAT_DEFAULTS, teacher, data: 'sotu', quant: 'w4-channel', steps, seed, bf16, evalEvery: steps,
        evalWindows: windows, saveEvery: 0, logEvery: steps },
    });
    const lines = fs.readFileSync(path.join(out, 'qat_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const ev = lines.filter((l) => l.valid_ppl !== undefined).at(-1);
    const tr = lines.filter((l) => l.loss !== undefined).at(-1);
    console.log(JSON.stringify({ teacher: path.basename(teacher), seed, bf16, steps, train_kl: tr.loss.total, valid_kl: ev.valid_kl, valid_ppl: ev.valid_ppl,
      seconds: Math.round((performance.now() - t0) / 100) / 10 }));
  }
}
fs.rmSync(root, { recursive: true });
