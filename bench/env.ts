// The machine beside every bench figure: each JSON record printed by `kdqat bench --json` names
// the CPU model and the SIMD path its kernels ran on, so a figure is never read without them.
//   cpu        /proc/cpuinfo "model name" (+ family/model/stepping when listed), else
//              os.cpus()[0].model. A VM may report a bare name (here "AMD EPYC"): the
//              family/model/stepping numbers are what identify the generation.
//   isa        kdqat: the path of the kernel family that dominates the record (gemm for the
//              GEMM and training-step records, quant/kquant for those benches; "ts-ref" for the
//              TypeScript reference). torch: "<ATen capability>+<BLAS>", e.g.
//              "avx2+openblas-cooperlake" (bench/torch_env.py). onnx: "onnxruntime" (its MLAS
//              dispatches on its own and cannot be asked).
//   isa_paths  the details: kdqat's selected path per kernel family (addon isaInfo()), torch's
//              ATen capability, BLAS build string and version.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { IsaInfo } from '../src/backend/native/index.js';

export interface TorchEnv { torch: string; aten: string; blas: string; blas_core: string | null }

export interface BenchEnv {
  cpu: string;
  /** The addon's isaInfo() (null: addon not loaded, kdqat runs the TypeScript reference). */
  kdqat: IsaInfo | null;
  torch: TorchEnv | null;
  /** KDQAT_BACKEND=ref forces the TypeScript reference even with the addon loaded. */
  refBackend?: boolean;
}

/** The fields every record carries. */
export interface EnvFields { cpu: string; isa: string; isa_paths: Record<string, string> }

const here = dirname(fileURLToPath(import.meta.url));

/** The CPU model from /proc/cpuinfo text (or null when it names none). */
export function cpuFromProc(text: string): string | null {
  const first = text.split(/\n\s*\n/)[0];
  const field = (k: string): string | undefined => first.match(new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm'))?.[1].trim();
  const name = field('model name');
  if (!name) return null;
  const fam = field('cpu family'), model = field('model'), step = field('stepping');
  const ids = [fam && `family ${fam}`, model && `model ${model}`, step && `stepping ${step}`].filter(Boolean);
  return ids.length ? `${name} (${ids.join(', ')})` : name;
}

export function cpuModel(): string {
  try {
    const c = cpuFromProc(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (c) return c;
  } catch { /* not Linux */ }
  return os.cpus()[0]?.model?.trim() || 'unknown CPU';
}

/** What PyTorch runs (bench/torch_env.py), or null when `python` cannot import torch. */
export function torchEnv(python = '/usr/bin/python3'): TorchEnv | null {
  const r = spawnSync(python, [join(here, 'torch_env.py')], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  try { return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchEnv; } catch { return null; }
}

let cached: BenchEnv | null = null;

/** This process's environment (asked once; the bench children inherit the same KDQAT_ISA). */
export async function benchEnv(opts: { torch?: boolean } = {}): Promise<BenchEnv> {
  if (cached && (cached.torch || opts.torch === false)) return cached;
  const { nativeAddon } = await import('../src/backend/native/index.js');
  cached = {
    cpu: cpuModel(),
    kdqat: nativeAddon()?.isaInfo() ?? null,
    torch: opts.torch === false ? null : torchEnv(),
    refBackend: process.env.KDQAT_BACKEND === 'ref',
  };
  return cached;
}

const kdqatPaths = (info: IsaInfo | null): Record<string, string> =>
  info ? Object.fromEntries(Object.entries(info.families).map(([f, x]) => [f, x.selected])) : { backend: 'ts-ref' };

const torchIsa = (t: TorchEnv | null): string =>
  t ? `${t.aten}+${t.blas_core ? `openblas-${t.blas_core.toLowerCase()}` : t.blas.toLowerCase()}` : 'unknown';

/** The kernel family whose path names a kdqat record's `isa`. */
function familyOf(rec: Record<string, unknown>): string {
  if (rec.bench === 'quant') return 'quant';
  if (rec.bench === 'kquant') return 'kquant';
  return 'gemm';
}

/** cpu, isa and isa_paths for one record (pure: `env` says what the machine runs). */
export function envFields(rec: Record<string, unknown>, env: BenchEnv): EnvFields {
  const cpu = env.cpu;
  if (rec.impl === 'torch') {
    const t = env.torch;
    return { cpu, isa: torchIsa(t), isa_paths: t ? { aten: t.aten, blas: t.blas, torch: t.torch } : {} };
  }
  if (rec.bench === 'onnx') return { cpu, isa: 'onnxruntime', isa_paths: { onnxruntime: 'MLAS, own run-time dispatch' } };
  const paths = env.refBackend ? { backend: 'ts-ref' } : kdqatPaths(env.kdqat);
  // Records measured on the TypeScript reference on purpose.
  if (rec.backend === 'ref' || rec.impl === 'ref') return { cpu, isa: 'ts-ref', isa_paths: { backend: 'ts-ref' } };
  // kquant runs each compiled path in a child with KDQAT_ISA capped at it: impl names the path.
  if (rec.bench === 'kquant' && typeof rec.impl === 'string') return { cpu, isa: rec.impl, isa_paths: { ...paths, kquant: rec.impl } };
  if (env.refBackend || !env.kdqat) return { cpu, isa: 'ts-ref', isa_paths: paths };
  // Steps run with --bf16 all: every GEMM on the bf16 kernel (matmulBf16: AMX tiles where the
  // addon uses them, else AVX512_BF16).
  const bf = env.kdqat.amx?.matmulBf16 ? 'amx_bf16' : 'avx512_bf16';
  if (rec.compute === 'bf16') return { cpu, isa: bf, isa_paths: { ...paths, gemm: bf } };
  // --bf16 layers (kdqat qat's default with AVX512_BF16): every GEMM on it but the student's LM head;
  // --bf16 teacher: the teacher's GEMMs on it, the student's on the fp32 path.
  const fp32Gemm = paths.gemm ?? env.kdqat.isa;
  if (rec.compute === 'bf16-layers') return { cpu, isa: `${bf}_layers`, isa_paths: { ...paths, gemm: `${bf}, ${fp32Gemm} (the student's LM head)` } };
  if (rec.compute === 'bf16-teacher') return { cpu, isa: `${bf}_teacher`, isa_paths: { ...paths, gemm: `${fp32Gemm} (student), ${bf} (teacher)` } };
  // A float32 KD-QAT step on AMX: its Linears' GEMMs with an operand on an integer grid run
  // matmulOnGrid (three bf16 pieces on the tiles, float32 accuracy).
  const grid: Record<string, string> = rec.bench === 'qat_step' && env.kdqat.amx?.matmulOnGrid ? { grid_gemm: 'amx_bf16x3' } : {};
  // --int8-grad: the student's input gradients on matmulQ8Grad (the integer GEMM's path).
  if (rec.compute === 'fp32-int8grad') {
    const q8 = env.kdqat.amx?.matmulQ8 ? 'amx_int8' : env.kdqat.families.gemmQ8?.selected ?? env.kdqat.isa;
    return { cpu, isa: `${fp32Gemm}_int8grad`, isa_paths: { ...paths, ...grid, int8_grad: q8 } };
  }
  return { cpu, isa: env.kdqat.families[familyOf(rec)]?.selected ?? env.kdqat.isa, isa_paths: { ...paths, ...grid } };
}

/** The record with cpu, isa and isa_paths after its own fields. */
export function annotate<R extends object>(rec: R, env: BenchEnv): R & EnvFields {
  return { ...rec, ...envFields(rec as Record<string, unknown>, env) };
}
