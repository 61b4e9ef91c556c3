// The files a model directory carries from the model it was made from, beside config.json, the
// weights and the tokenizer: what newer transformers versions keep outside tokenizer_config.json,
// and generation settings (io/model-dir.ts writes them).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Files a model directory carries from its source (SaveModelOptions.companionsFrom): the chat
 *  template files newer transformers versions save beside tokenizer_config.json (with a
 *  tokenizer), and generation_config.json (for a family that writes one). */
const COMPANIONS = [
  { name: 'chat_template.jinja', json: false, withTokenizer: true },
  { name: 'chat_template.json', json: true, withTokenizer: true },
  { name: 'generation_config.json', json: true, withTokenizer: false },
];

/** The companion files in `dir` (none without one), checked: a JSON one must parse. */
export function companionFiles(dir: string | undefined, withTokenizer: boolean): Map<string, string> {
  const out = new Map<string, string>();
  if (!dir) return out;
  for (const c of COMPANIONS) {
    const file = path.join(dir, c.name);
    if ((c.withTokenizer && !withTokenizer) || !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
    const text = fs.readFileSync(file, 'utf8');
    if (c.json) {
      let j: unknown;
      try {
        j = JSON.parse(text);
      } catch (e) {
        throw new Error(`${file}: not valid JSON (${(e as Error).message}); fix or remove it (kdqat copies it into the models it writes)`);
      }
      if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error(`${file}: not a JSON object; fix or remove it`);
    }
    out.set(c.name, text);
  }
  return out;
}
