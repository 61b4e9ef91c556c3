// Summarizes llama-quantize outputs for test/fixtures/llama_quantize_kmix.json (see
// scripts/make_kmix_fixture.sh): general.file_type, and per tensor its type and the SHA-256 of
// its bytes as stored. Usage: kmix_fixture.ts DIR OUT.json NAME... (reads DIR/NAME.gguf).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ggufGet, readGgufHeader, readGgufTensor } from '../src/io/gguf_read.js';

const [dir, out, ...names] = process.argv.slice(2);
const fixture: Record<string, unknown> = {
  source: 'llama_model_quantize of node-llama-cpp\'s libllama (llama.cpp release v0.4.0), default params, no imatrix, ' +
    'on `kdqat export --model teachers/llama-sotu --format gguf` (F32)',
};
for (const name of names) {
  const g = readGgufHeader(path.join(dir, `${name}.gguf`));
  const tensors: Record<string, { type: string; sha256: string }> = {};
  for (const [t, info] of g.tensors) {
    const a = readGgufTensor(g, t);
    tensors[t] = { type: info.type, sha256: createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex') };
  }
  fixture[name] = { file_type: ggufGet(g, 'general.file_type'), tensors };
}
fs.writeFileSync(out, JSON.stringify(fixture, null, 1) + '\n');
console.log(`wrote ${out}: ${names.join(', ')}`);
