// `kdqat export`: a model directory to a GGUF file for llama.cpp (LLaMA only), or re-saved as a
// model directory in half precision (safetensors F16/BF16).
// The model modules are imported when the command runs (see eval.ts).
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SaveDType } from '../io/model-dir.js';

export interface ExportOptions {
  model?: string;
  format?: string;
  out?: string;
  dtype?: string;
  tokenizer?: string;
  force?: boolean;
}

export function exportCommand(): Command {
  return new Command('export')
    .description('export a model directory: --format gguf (LLaMA, for llama.cpp) or --format safetensors (half-precision model directory)')
    .requiredOption('--model <dir>', 'Hugging Face model directory')
    .requiredOption('--format <format>', 'gguf or safetensors')
    .requiredOption('--out <path>', 'FILE.gguf, or the output directory for safetensors')
    .option('--dtype <dtype>', 'gguf: f32 (default) or f16; safetensors: f16 (default), bf16 or f32')
    .option('--tokenizer <file>', 'tokenizer.json to use when the model directory has none')
    .option('--force', 'replace an existing output')
    .addHelpText('after', '\nExamples:\n  kdqat export --model out/llama --format gguf --out llama.gguf --dtype f16\n' +
      '  kdqat export --model out/bert-cls --format safetensors --dtype bf16 --out out/bert-cls-bf16')
    .action(async (opts: ExportOptions) => {
      const out = await runExport(opts);
      process.stdout.write(`wrote ${out}\n`);
    });
}

/** Returns the absolute path written. */
export async function runExport(opts: ExportOptions): Promise<string> {
  const format = (opts.format ?? '').toLowerCase();
  if (format !== 'gguf' && format !== 'safetensors') throw new Error(`--format must be gguf or safetensors, got ${JSON.stringify(opts.format)}`);
  if (!opts.out) throw new Error('--out is required');
  const dtype = (opts.dtype ?? (format === 'gguf' ? 'f32' : 'f16')).toUpperCase();
  const allowed = format === 'gguf' ? ['F32', 'F16'] : ['F16', 'BF16', 'F32'];
  if (!allowed.includes(dtype)) throw new Error(`--dtype ${opts.dtype}: ${format} export supports ${allowed.map((d) => d.toLowerCase()).join(', ')}`);
  const out = path.resolve(opts.out);
  // Checked before loading, which can take a while for a large model.
  if (fs.existsSync(out) && !opts.force) throw new Error(`--out ${opts.out}: ${out} already exists; pass --force to replace it`);
  const { describeModel, openModel } = await import('./open-model.js');
  const { exportLlamaGguf } = await import('../io/gguf.js');
  const { saveModelDir } = await import('../io/model-dir.js');
  const m = openModel(opts.model);
  if (opts.tokenizer && !fs.existsSync(opts.tokenizer)) throw new Error(`--tokenizer ${opts.tokenizer}: file not found`);
  const tokFile = opts.tokenizer ?? m.loaded.tokenizerPath;
  const tokenizerJson = tokFile ? fs.readFileSync(tokFile, 'utf8') : undefined;

  if (format === 'gguf') {
    const hf = m.loaded.hf;
    if (hf.arch !== 'llama') {
      throw new Error(`--model ${m.dir} is ${describeModel(m)}: GGUF export is for LLaMA-family decoders (llama.cpp runs no BERT encoders from kdqat); use --format safetensors`);
    }
    if (!tokenizerJson) throw new Error(`--model ${m.dir}: no tokenizer.json in the model directory, and GGUF embeds the vocabulary; pass --tokenizer FILE`);
    try {
      exportLlamaGguf(out, { config: hf, params: m.loaded.params, tokenizerJson, dtype: dtype as 'F32' | 'F16', force: opts.force, name: path.basename(m.dir) });
    } catch (e) {
      throw new Error(`export to ${out} failed: ${(e as Error).message}`);
    }
    return out;
  }
  if (out === m.dir && !opts.force) throw new Error(`--out ${opts.out} is the model directory itself; pass --force to replace it in place`);
  saveModelDir(out, { config: m.loaded.hf, params: m.loaded.params, tokenizerJson, dtype: dtype as SaveDType, force: opts.force });
  return out;
}
