// Dumps what a finished `kdqat pretrain --arch bert` run fed its model (initial parameters, the
// first steps' masked batches, the validation batches; src/train/pretrain-dump.ts) for
// scripts/ref_mlm.py to replay in PyTorch.
//   node --import tsx scripts/dump-mlm-batches.ts RUN_DIR STEPS OUT.safetensors [--force]
import { writeSafetensors } from '../src/io/safetensors.js';
import { dumpMlmRun } from '../src/train/pretrain-dump.js';

const [dir, steps, out] = process.argv.slice(2).filter((a) => a !== '--force');
if (!dir || !steps || !out) {
  console.error('usage: node --import tsx scripts/dump-mlm-batches.ts RUN_DIR STEPS OUT.safetensors [--force]');
  process.exit(2);
}
const d = dumpMlmRun(dir, Number(steps));
writeSafetensors(out, d.tensors, { metadata: d.metadata, force: process.argv.includes('--force') });
console.log(`wrote ${out} (${d.tensors.size} tensors)`);
