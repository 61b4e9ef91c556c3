// The architecture registry (src/models/registry.ts): model_type picks a record, unknown types
// fail naming the file, the key and the supported list; every record round-trips its config
// keys; and nothing outside src/models tests an architecture's name (STYLE.md 9).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ARCHITECTURES, SUPPORTED_MODEL_TYPES, architecture, hfConfigJson, parseHfConfig, type HfModelConfig } from '../../src/models/registry.js';
import type { Architecture } from '../../src/models/architecture.js';
import { formatHfJson } from '../../src/io/hf-config.js';
import { ggufTensorName } from '../../src/io/gguf.js';

const SIZES = { vocab: 50, hidden: 16, layers: 2, heads: 4, kvHeads: 2, intermediate: 24, seq: 32, dropout: 0.1 };

test('the registry rejects an unknown model_type, naming config.json, the key and the supported list', () => {
  for (const a of ['llama', 'bert', 'mistral', 'qwen2', 'qwen3', 'phi3', 'roberta', 'xlm-roberta', 'distilbert', 'roformer']) assert.ok(SUPPORTED_MODEL_TYPES.includes(a as never), a);
  const list = SUPPORTED_MODEL_TYPES.map((s) => `"${s}"`).join(', ');
  assert.throws(() => parseHfConfig({ model_type: 'gpt_neox', hidden_size: 8 }, 'm/config.json'),
    (e: Error) => e.message === `m/config.json: unknown model_type "gpt_neox"; kdqat supports ${list}: use a model of one of these families`);
  // A model that needs its own code (auto_map) is named as such: kdqat never runs it.
  assert.throws(() => parseHfConfig({ model_type: 'evil', auto_map: { AutoModel: 'modeling_evil.Evil' } }, 'm/config.json'),
    /unknown model_type "evil" \(its "auto_map" names custom code, which kdqat never runs\)/);
  assert.throws(() => parseHfConfig({ hidden_size: 8 }, 'm/config.json'),
    (e: Error) => e.message.startsWith(`m/config.json: missing required key "model_type" (supported: ${list})`));
  assert.throws(() => architecture('gpt2', '--arch'), (e: Error) => e.message.includes(`--arch "gpt2" is not one kdqat supports (${list})`));
  assert.throws(() => parseHfConfig({ model_type: 'toString' }, 'config.json'), /unknown model_type "toString"/);
});

for (const [name, rec] of Object.entries(ARCHITECTURES) as [string, Architecture][]) {
  test(`${name}: the record round-trips its config keys (config.json → config → config.json)`, () => {
    assert.equal(rec.name, name);
    const config = rec.pretrain.config(SIZES);
    const meta = rec.config.defaultMeta(rec.pretrain.meta({ bos: 1, eos: 2, pad: 0 }));
    const json = rec.config.toJson(config, meta);
    assert.equal(json.model_type, name);
    const parsed = parseHfConfig(JSON.parse(formatHfJson(json)), 'x/config.json');
    assert.deepEqual(parsed, { arch: name, config, meta } as HfModelConfig);
    assert.deepEqual(hfConfigJson(parsed), json);
    // Every HF class the record claims parses to that class's heads and is written back.
    for (const [cls, head] of Object.entries(rec.hfClasses)) {
      const p = parseHfConfig({ ...json, architectures: [cls], ...(head === 'classifier' ? { id2label: { 0: 'a', 1: 'b' } } : {}) });
      const heads = rec.headsOf(p.meta);
      for (const h of ['lm', 'mlm', 'classifier'] as const) assert.equal(heads[h], head === h, `${cls}: ${h}`);
      assert.deepEqual(parseHfConfig(hfConfigJson(p)), p);
    }
  });
}

test('llama: the record\'s GGUF tensor names are the exporter\'s', () => {
  const rec = ARCHITECTURES.llama;
  const config = { ...rec.pretrain.config(SIZES), tieWordEmbeddings: false };
  assert.equal(rec.gguf?.arch, 'llama');
  for (const n of rec.paramSpec(config, rec.headsOf(rec.config.defaultMeta())).keys()) assert.equal(rec.gguf!.tensorName(n), ggufTensorName(n), n);
  assert.equal(ARCHITECTURES.bert.gguf, null);
});

// Files that still test an architecture's name: none (export asks `architecture(hf.arch).gguf`).
const ALLOWED = new Set<string>();
const NAME_TESTS = [
  /\barch\s*[!=]==?\s*['"`]/, // arch === 'llama'
  /[!=]==?\s*['"`](llama|bert|mistral|qwen2|qwen3|phi3|roberta|xlm-roberta|distilbert|roformer)['"`]/, // … !== 'bert'
  /['"`](llama|bert|mistral|qwen2|qwen3|phi3|roberta|xlm-roberta|distilbert|roformer)['"`]\s*[!=]==?/, // 'llama' === …
  /case\s+['"`](llama|bert|mistral|qwen2|qwen3|phi3|roberta|xlm-roberta|distilbert|roformer)['"`]/, // switch (arch) { case 'llama': … }
];

test('no file outside src/models tests an architecture name', () => {
  const root = path.resolve(import.meta.dirname, '../..');
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) { if (rel !== 'src/models') walk(rel); continue; }
      if (!rel.endsWith('.ts') || ALLOWED.has(rel)) continue;
      fs.readFileSync(path.join(root, rel), 'utf8').split('\n').forEach((line, i) => {
        if (NAME_TESTS.some((re) => re.test(line))) offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
    }
  };
  walk('src');
  assert.deepEqual(offenders, [], 'ask the architecture record (src/models/registry.ts) instead of testing a name');
  // The allow-list stays honest: each listed file exists.
  for (const f of ALLOWED) assert.ok(fs.existsSync(path.join(root, f)), f);
});
