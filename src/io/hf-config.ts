// Hugging Face config.json ⇄ kdqat's configs. Which keys each family has, their defaults and
// checks live in its architecture record (src/models/*-arch.ts); model_type picks the record
// (src/models/registry.ts). Writing mirrors PretrainedConfig.save_pretrained: a JSON object with
// sorted keys, 2-space indent and a final newline; "transformers_version" is not added (we did not
// run transformers) but a loaded config keeps the one it came with, with the other keys that do not
// change the model (encoder.ts INERT_KEYS, the decoders' meta.extra); "architectures" is always
// set. An unchanged config read from a file is written back as that file's bytes (configText).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isObj, type Obj } from '../models/config-reader.js';
import { readModelText } from './model-files.js';
import { architecture, parseHfConfig, type ArchName, type HfModelConfig } from '../models/registry.js';

export type { LlamaMeta } from '../models/llama-arch.js';
export type { BertHead, BertMeta } from '../models/bert-arch.js';
export { SUPPORTED_MODEL_TYPES, hfConfigJson, parseHfConfig, type HfModelConfig } from '../models/registry.js';

/** The text of the config.json each parsed config was read from (readHfConfig), so that saving
 *  an unchanged config writes the source's bytes back (Python's float spelling: 1e-05, 10000.0). */
const SOURCE_TEXT = new WeakMap<object, string>();

/** The config.json text to write for `c`: the source's own bytes when `c` was read by readHfConfig
 *  and its JSON is unchanged, else kdqat's formatting (formatHfJson). */
export function configText(c: object, json: Obj): string {
  const mine = formatHfJson(json);
  const src = SOURCE_TEXT.get(c);
  if (src === undefined) return mine;
  try {
    return formatHfJson(JSON.parse(src) as Obj) === mine ? src : mine;
  } catch {
    return mine;
  }
}

export function readHfConfig(file: string): HfModelConfig {
  let json: unknown;
  let text = '';
  if (!fs.existsSync(file)) {
    // A run directory of `kdqat qat` holds its model one level down, in student/.
    const inner = [path.join(path.dirname(file), 'student')].find((d) => fs.existsSync(path.join(d, 'config.json')));
    throw new Error(`${file}: not found; a model directory needs a config.json (the Hugging Face model config)` +
      (inner ? `; ${path.dirname(file)} looks like a run directory: the model is in ${inner}` : ''));
  }
  if (!fs.statSync(file).isFile()) throw new Error(`${file}: is a directory, not a file; put the model's config.json there`);
  text = readModelText(file);
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); fix it, or re-save the model's config.json`);
  }
  const c = parseHfConfig(json, file);
  SOURCE_TEXT.set(c, text);
  return c;
}

/** Metadata for a config built in kdqat (no config.json to take it from), completed from `partial`. */
export function defaultMeta<K extends ArchName>(arch: K, partial: Partial<Extract<HfModelConfig, { arch: K }>['meta']> = {}): Extract<HfModelConfig, { arch: K }>['meta'] {
  return architecture(arch).config.defaultMeta(partial);
}

/** JSON text as transformers writes it: json.dumps(d, indent=2, sort_keys=True) + "\n". */
export function formatHfJson(d: Obj): string {
  const sort = (v: unknown): unknown => (isObj(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])]))
    : Array.isArray(v) ? v.map(sort) : v);
  // Python writes floats with a decimal point (0.0, 10000.0); JSON readers do not care.
  return JSON.stringify(sort(d), null, 2) + '\n';
}
