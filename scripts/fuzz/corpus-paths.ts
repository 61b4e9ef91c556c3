// Fuzz cases for issue 16 point 4: loading never runs anything from a model directory and never
// reads outside it. Shard indexes with absolute paths, `..`, pickles as shards; symlinks out of
// the directory; pickled checkpoints in place of safetensors; auto_map / remote code in
// config.json. Two kinds: 'error' cases (refused, naming file and field) and 'ok' cases that must
// run while the code the directory offers is never executed (a marker file it would write stays
// absent) — and the Hugging Face cache layout (symlinks into ../../blobs) keeps working.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Rng } from '../../src/tensor/rng.js';
import type { Base } from './base.js';
import { COMMANDS, M, copyDir, dataFor, type FuzzCase, type Kind } from './case.js';

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

/** A pickle whose unpickling would run os.system (protocol 2): never to be opened by kdqat. */
const PICKLE = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cposix\nsystem\nq\x00X\x0b\x00\x00\x00touch PWNEDq\x01\x85q\x02Rq\x03.', 'latin1')]);

function pathCase(what: string, kind: Kind, cmd: string, file: string, field: string | string[], edit: (m: string, ws: string) => void,
  n: number, expect: 'error' | 'ok' = 'error', after?: (ws: string) => string | null): FuzzCase {
  return {
    id: `paths/${what}/${kind}-${cmd}#${n}`, category: 'paths', expect, file, field: ([] as string[]).concat(field).join('\u0000'),
    setup(ws, base) {
      copyDir(base[kind === 'student' ? 'student' : kind] as string, M(ws));
      dataFor(ws, base);
      edit(M(ws), ws);
    },
    run: { argv: COMMANDS[kind][cmd] },
    after,
  };
}

/** Splits model.safetensors into a 1-shard index whose shard is called `shard` (placed at `at`). */
function asIndex(m: string, shard: unknown, at?: string): void {
  const st = path.join(m, 'model.safetensors');
  const bytes = fs.readFileSync(st);
  fs.rmSync(st);
  const n = Number(bytes.readBigUInt64LE(0));
  const names = Object.keys(JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'))).filter((k) => k !== '__metadata__');
  if (at) {
    fs.mkdirSync(path.dirname(at), { recursive: true });
    fs.writeFileSync(at, bytes);
  }
  fs.writeFileSync(path.join(m, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(names.map((k) => [k, shard])) }));
}

const noMarker = (ws: string): string | null => {
  for (const p of [path.join(ws, 'PWNED'), path.join(process.cwd(), 'PWNED'), path.join(ws, 'm', 'PWNED')]) {
    if (fs.existsSync(p)) return `code from the model directory ran: ${p} exists`;
  }
  return null;
};

export function pathCases(rng: Rng, out: FuzzCase[]): void {
  const kinds: [Kind, string][] = [['llama', 'eval'], ['llama', 'quantize'], ['llama', 'qat'], ['llama', 'export-gguf'], ['bert', 'finetune'], ['bert', 'eval']];
  const IDX = 'model.safetensors.index.json';
  const shardNames: [string, (ws: string) => unknown, string][] = [
    ['shard-absolute', (ws) => path.join(ws, 'outside', 'model.safetensors'), 'weight_map'],
    ['shard-dotdot', () => '../outside/model.safetensors', 'weight_map'],
    ['shard-dotdot-bare', () => '..', 'weight_map'],
    ['shard-dot', () => '.', 'weight_map'],
    ['shard-empty', () => '', 'weight_map'],
    ['shard-subdir-escape', () => 'sub/../../outside/model.safetensors', 'weight_map'],
    ['shard-backslash', () => '..\\outside\\model.safetensors', 'weight_map'],
    ['shard-number', () => 7, 'weight_map'],
    ['shard-null', () => null, 'weight_map'],
    ['shard-pickle', () => 'pytorch_model-00001-of-00001.bin', 'pytorch_model-00001-of-00001.bin'],
    ['shard-missing', () => 'model-00001-of-00002.safetensors', 'model-00001-of-00002.safetensors'],
  ];
  for (const [what, shard, field] of shardNames) {
    for (let n = 0; n < 3; n++) {
      const [kind, cmd] = pick(rng, kinds);
      out.push(pathCase(what, kind, cmd, IDX, field, (m, ws) => {
        const s = shard(ws);
        // The escaping shard exists and is a valid file: only the path check can stop it.
        asIndex(m, s, what === 'shard-pickle' ? undefined : path.join(ws, 'outside', 'model.safetensors'));
        if (what === 'shard-pickle') fs.writeFileSync(path.join(m, s as string), PICKLE);
      }, n));
    }
  }
  const badIndex: [string, string, string][] = [
    ['index-not-json', '{"weight_map": ', IDX], ['index-no-map', '{"metadata": {}}', 'weight_map'],
    ['index-map-array', '{"weight_map": ["model.safetensors"]}', 'weight_map'], ['index-empty-map', '{"weight_map": {}}', 'missing'],
  ];
  for (const [what, text, field] of badIndex) {
    const [kind, cmd] = pick(rng, kinds);
    out.push(pathCase(what, kind, cmd, IDX, field, (m) => { asIndex(m, 'model.safetensors', path.join(m, 'x')); fs.rmSync(path.join(m, 'x')); fs.writeFileSync(path.join(m, IDX), text); }, 0));
  }
  // Symlinks out of the directory, to valid files of the same kind (only the check stops them).
  const links: [string, string][] = [['model.safetensors', 'model.safetensors'], ['config.json', 'config.json'], ['tokenizer.json', 'tokenizer.json'],
    ['tokenizer_config.json', 'tokenizer_config.json']];
  for (const [file, field] of links) {
    for (let n = 0; n < 3; n++) {
      const [kind, cmd] = pick(rng, file === 'tokenizer_config.json' ? [['llama', 'quantize'], ['llama', 'export-gguf']] as [Kind, string][] : kinds);
      out.push(pathCase(`symlink-out-${file}`, kind, cmd, file, [field, 'outside'], (m, ws) => {
        const target = path.join(ws, 'outside', file);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.renameSync(path.join(m, file), target);
        fs.symlinkSync(n === 0 ? target : path.relative(m, target), path.join(m, file));
      }, n));
    }
  }
  for (let n = 0; n < 3; n++) {
    out.push(pathCase('symlink-out-quantization.json', 'student', pick(rng, Object.keys(COMMANDS.student)), 'quantization.json', ['quantization.json', 'outside'], (m, ws) => {
      const target = path.join(ws, 'outside', 'quantization.json');
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.renameSync(path.join(m, 'quantization.json'), target);
      fs.symlinkSync(target, path.join(m, 'quantization.json'));
    }, n));
  }
  // A symlinked shard of an index.
  for (let n = 0; n < 3; n++) {
    const [kind, cmd] = pick(rng, kinds);
    out.push(pathCase('symlink-out-shard', kind, cmd, 'model-00001-of-00001.safetensors', ['model-00001-of-00001.safetensors', 'outside'], (m, ws) => {
      asIndex(m, 'model-00001-of-00001.safetensors', path.join(ws, 'outside', 'model-00001-of-00001.safetensors'));
      fs.symlinkSync(path.join(ws, 'outside', 'model-00001-of-00001.safetensors'), path.join(m, 'model-00001-of-00001.safetensors'));
    }, n));
  }
  // Pickled checkpoints instead of safetensors: refused by name, never opened.
  const pickles = ['pytorch_model.bin', 'model.pt', 'model.pth', 'model.ckpt', 'tf_model.h5', 'flax_model.msgpack'];
  pickles.forEach((file, n) => {
    for (let k = 0; k < 2; k++) {
      const [kind, cmd] = pick(rng, kinds);
      out.push(pathCase(`pickle-only-${file}`, kind, cmd, file, [file, 'safetensors'], (m) => {
        fs.rmSync(path.join(m, 'model.safetensors'));
        fs.writeFileSync(path.join(m, file), PICKLE);
      }, n * 2 + k, 'error', noMarker));
    }
  });
  for (let n = 0; n < 2; n++) {
    const [kind, cmd] = pick(rng, kinds);
    out.push(pathCase('pickle-index', kind, cmd, 'pytorch_model.bin.index.json', ['pytorch_model.bin.index.json', 'safetensors'], (m) => {
      fs.rmSync(path.join(m, 'model.safetensors'));
      fs.writeFileSync(path.join(m, 'pytorch_model-00001-of-00001.bin'), PICKLE);
      fs.writeFileSync(path.join(m, 'pytorch_model.bin.index.json'), JSON.stringify({ weight_map: { 'lm_head.weight': 'pytorch_model-00001-of-00001.bin' } }));
    }, n, 'error', noMarker));
  }
  // Remote code: an unknown model_type with auto_map is refused (kdqat runs no code from the
  // directory); a known model_type with auto_map / trust_remote_code loads the built-in model,
  // and the directory's code files are never run.
  const code = (m: string): void => {
    fs.writeFileSync(path.join(m, 'modeling_evil.py'), 'import os\nos.system("touch PWNED")\n');
    fs.writeFileSync(path.join(m, 'modeling_evil.js'), 'require("fs").writeFileSync(require("path").join(__dirname, "PWNED"), "")\n');
    fs.writeFileSync(path.join(m, 'modeling_evil.mjs'), 'import fs from "node:fs"; fs.writeFileSync(new URL("PWNED", import.meta.url), "")\n');
  };
  const editCfg = (m: string, f: (j: Record<string, unknown>) => Record<string, unknown>): void => {
    const p = path.join(m, 'config.json');
    fs.writeFileSync(p, JSON.stringify(f(JSON.parse(fs.readFileSync(p, 'utf8')))));
  };
  const autoMap = { AutoConfig: 'configuration_evil.EvilConfig', AutoModelForCausalLM: 'modeling_evil.EvilForCausalLM' };
  for (let n = 0; n < 4; n++) {
    const [kind, cmd] = pick(rng, kinds);
    out.push(pathCase('auto-map-unknown-type', kind, cmd, 'config.json', ['auto_map', 'model_type'], (m) => {
      code(m);
      editCfg(m, (j) => ({ ...j, model_type: 'evil', auto_map: autoMap }));
    }, n, 'error', noMarker));
  }
  const okKinds: [Kind, string][] = [['llama', 'eval'], ['llama', 'quantize'], ['llama', 'export-gguf'], ['bert', 'eval']];
  for (let n = 0; n < 6; n++) {
    const [kind, cmd] = pick(rng, okKinds);
    out.push(pathCase('auto-map-known-type', kind, cmd, 'config.json', [], (m) => {
      code(m);
      editCfg(m, (j) => ({ ...j, auto_map: autoMap, trust_remote_code: true }));
      const tc = path.join(m, 'tokenizer_config.json');
      fs.writeFileSync(tc, JSON.stringify({ ...JSON.parse(fs.readFileSync(tc, 'utf8')), auto_map: { AutoTokenizer: ['tokenization_evil.EvilTokenizer', null] },
        tokenizer_file: '../../../../etc/passwd' }));
    }, n, 'ok', noMarker));
  }
  // The Hugging Face hub cache: snapshots/<rev>/<file> -> ../../blobs/<sha>. Symlinks into the
  // repo's own blobs/ are how every downloaded model looks, and must load.
  for (let n = 0; n < 4; n++) {
    const [kind, cmd] = pick(rng, okKinds);
    out.push({
      id: `paths/hf-cache-layout/${kind}-${cmd}#${n}`, category: 'paths', expect: 'ok', file: '', field: '',
      setup(ws, base: Base) {
        const repo = path.join(ws, 'hub', 'models--org--tiny');
        const snap = path.join(repo, 'snapshots', 'abc123');
        fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
        fs.mkdirSync(snap, { recursive: true });
        const src = base[kind === 'student' ? 'student' : kind] as string;
        fs.readdirSync(src).forEach((f, i) => {
          fs.copyFileSync(path.join(src, f), path.join(repo, 'blobs', `blob${i}`));
          fs.symlinkSync(`../../blobs/blob${i}`, path.join(snap, f));
        });
        fs.symlinkSync(snap, M(ws));
        dataFor(ws, base);
      },
      run: { argv: COMMANDS[kind][cmd] },
    });
  }
}
