// kdqat's masked-LM pre-training against a PyTorch replica (scripts/ref_mlm.py) from the same
// initial weights on the same masked batches, dropout off in both (issue 14: engine or recipe?).
//
//   node --import tsx scripts/compare-mlm.ts --out DIR [--compare-steps N] [--dtype float64|float32] [--fixture F]
//        [pretrain settings: --corpus sotu,brown --hidden 256 --layers 4 --heads 4 --intermediate 1024
//         --seq 128 --vocab 8192 --steps 2000 --batch 32 --lr 7e-4 --warmup 120 ...]
//
// Runs `kdqat pretrain --arch bert --dropout 0 --log-every 1` into DIR (unless DIR already holds
// a finished run with these settings, which is reused), dumps its first N steps' batches and its initial
// weights (src/train/pretrain-dump.ts), replays N steps in PyTorch and prints per-step losses and
// |Δ|, the masks' 80/10/10 statistics, then both implementations' validation MLM loss of the
// run's trained model. --fixture F also writes test/train/mlm-reference.test.ts's fixture.
//
// Step 1 must agree to float32 rounding: the float64 replica is exact up to its own rounding, and
// kdqat's float32 forward is within chainBound(forwardDepth(L), n, κ) (test/tolerance.ts; n the
// longest dot product, κ = 4) of it, relative to max(1, loss). Later steps drift slowly (Adam
// amplifies rounding in near-zero gradients); an error in the masks, the loss normalization, the
// tied decoder, LayerNorm eps, the schedule or the weight-decay groups shows at step 1 or 2.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeSafetensors } from '../src/io/safetensors.js';
import { dumpMlmRun } from '../src/train/pretrain-dump.js';
import { PRETRAIN_DEFAULTS, runPretrain, type PretrainConfig } from '../src/train/pretrain.js';
import { silentReporter } from '../src/cli/progress.js';
import { chainBound, forwardDepth, KAPPA_MATMUL } from '../test/tolerance.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args.splice(i, 2)[1];
};
const out = opt('--out');
if (!out) {
  console.error('usage: node --import tsx scripts/compare-mlm.ts --out DIR [--compare-steps N] [--dtype float64|float32] [pretrain settings]');
  process.exit(2);
}
const compareSteps = Number(opt('--compare-steps') ?? 20);
const dtype = opt('--dtype') ?? 'float64';
const fixture = opt('--fixture');
const c: PretrainConfig = { ...PRETRAIN_DEFAULTS, arch: 'bert', dropout: 0, logEvery: 1, saveEvery: 0, evalEvery: 0 };
const numeric = new Set(Object.entries(PRETRAIN_DEFAULTS).filter(([, v]) => typeof v === 'number').map(([k]) => k));
for (let i = 0; i < args.length; i += 2) {
  const key = args[i].replace(/^--/, '').replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase()).replace(/^seqLen$/, 'seq');
  const v = args[i + 1];
  if (v === undefined) throw new Error(`${args[i]}: needs a value`);
  if (key === 'corpus') c.corpus = v.split(',');
  else if (numeric.has(key)) (c as unknown as Record<string, number>)[key] = Number(v);
  else throw new Error(`${args[i]}: not a pretrain setting this script passes on (${[...numeric, 'corpus'].join(', ')})`);
}
for (const [k, want] of [['arch', 'bert'], ['dropout', 0], ['logEvery', 1], ['accum', 1]] as const) {
  if (c[k] !== want) throw new Error(`--${k.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`)} must be ${want} for the comparison (it sets it)`);
}
if (compareSteps > c.steps) throw new Error(`--compare-steps ${compareSteps} is more than --steps ${c.steps}`);

const summaryFile = path.join(out, 'summary.json');
if (fs.existsSync(summaryFile)) {
  const had = (JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as { config: Record<string, unknown> }).config;
  for (const [k, v] of Object.entries(c)) {
    if (JSON.stringify(had[k]) !== JSON.stringify(v)) {
      throw new Error(`${summaryFile}: the run there has ${k} = ${JSON.stringify(had[k])}, these settings ${JSON.stringify(v)}; give another --out, or the run's own settings to reuse it`);
    }
  }
  console.log(`reusing the finished run in ${out}`);
}
else {
  console.log(`kdqat pretrain (${c.steps} steps) into ${out}`);
  runPretrain({ out, reporter: silentReporter, config: c, force: fs.existsSync(out) });
}
const dumpFile = path.join(out, `mlm-dump-${compareSteps}.safetensors`);
const d = dumpMlmRun(out, compareSteps);
writeSafetensors(dumpFile, d.tensors, { metadata: d.metadata, force: true });
const py = spawnSync('/usr/bin/python3', [path.join(import.meta.dirname, 'ref_mlm.py'), dumpFile, '--trained', path.join(out, 'model.safetensors'), '--dtype', dtype, '--json', ...(fixture ? ['--fixture', fixture] : [])],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
if (py.status !== 0) throw new Error(`scripts/ref_mlm.py failed (exit ${py.status})`);
const r = JSON.parse(py.stdout) as {
  mask_stats: { chosen: number; chosen_fraction: number; chosen_special: number; mask: number; random: number; unchanged: number }; losses: number[]; grad_norms: number[]; valid_mlm_loss: number | null; kdqat_losses: number[]; kdqat_valid_mlm_loss: number | null };

const model = JSON.parse(d.metadata.model) as { hiddenSize: number; intermediateSize: number; vocabSize: number; numHiddenLayers: number };
const n = Math.max(model.hiddenSize, model.intermediateSize, model.vocabSize, c.seq);
const rel = chainBound(forwardDepth(model.numHiddenLayers), n, KAPPA_MATMUL);
console.log(`step-1 bound: chainBound(forwardDepth(${model.numHiddenLayers}) = ${forwardDepth(model.numHiddenLayers)}, n = ${n}, κ = ${KAPPA_MATMUL}) = ${rel.toExponential(2)} × max(1, loss)`);
console.log(`${'step'.padStart(5)} ${'pytorch'.padStart(12)} ${'kdqat'.padStart(12)} ${'|Δ|'.padStart(10)}`);
let worst = 0;
r.losses.forEach((l, s) => {
  const k = r.kdqat_losses[s];
  worst = Math.max(worst, Math.abs(l - k));
  console.log(`${String(s + 1).padStart(5)} ${l.toFixed(7).padStart(12)} ${k.toFixed(7).padStart(12)} ${Math.abs(l - k).toExponential(2).padStart(10)}`);
});
const d1 = Math.abs(r.losses[0] - r.kdqat_losses[0]), b1 = rel * Math.max(1, Math.abs(r.losses[0]));
console.log(`step 1: |Δ| ${d1.toExponential(2)} ${d1 <= b1 ? '≤' : '>'} bound ${b1.toExponential(2)}: ${d1 <= b1 ? 'agree' : 'DISAGREE'}; largest |Δ| over ${r.losses.length} steps ${worst.toExponential(2)}`);
const m = r.mask_stats, pc = (x: number): string => `${(100 * x).toFixed(1)}%`;
console.log(`masks of the ${r.losses.length} steps: ${m.chosen} chosen = ${pc(m.chosen_fraction)} of the non-special tokens (${m.chosen_special} special); [MASK] ${pc(m.mask)}, random ${pc(m.random)}, unchanged ${pc(m.unchanged)}`);
if (r.valid_mlm_loss !== null) {
  console.log(`validation MLM loss of the trained model (${c.steps} steps): pytorch ${r.valid_mlm_loss.toFixed(7)}, kdqat ${r.kdqat_valid_mlm_loss?.toFixed(7)}, |Δ| ${Math.abs(r.valid_mlm_loss - (r.kdqat_valid_mlm_loss ?? NaN)).toExponential(2)}`);
}
