// A model's chat template, as transformers' apply_chat_template renders it (and transformers.js,
// whose Jinja engine @huggingface/jinja this is): the template is tokenizer_config.json's
// "chat_template" (a string, or a list of {name, template} of which "default" is used), or the
// chat_template.jinja / chat_template.json file newer transformers versions save beside it; the
// context is the messages and the special tokens by name (bos_token, eos_token, …, as strings);
// add_generation_prompt is false for a conversation to train on, true for one to answer (kdqat
// generate --chat).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import type { ChatMessage, ChatRenderer } from '../data/chat.js';
import { SPECIAL_TYPES, contentOf, readTokenizerConfig } from './tokenizer_config.js';


/** Where the directory keeps its chat template: tokenizer_config.json (parsed: `cfg`), else the
 *  first of the files newer transformers versions write beside it; null when it has none. */
function templateFile(dir: string, cfg: Record<string, unknown> | null): string | null {
  if (cfg?.chat_template !== undefined && cfg?.chat_template !== null) return path.join(dir, 'tokenizer_config.json');
  return ['chat_template.jinja', 'chat_template.json'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f)) ?? null;
}

/** The template text and where it was read, or null when the directory has none. */
function templateSource(dir: string): { text: string; file: string } | null {
  const cfg = readTokenizerConfig(dir);
  const file = templateFile(dir, cfg);
  if (!file) return null;
  const t = cfg?.chat_template;
  if (typeof t === 'string') return { text: t, file };
  if (Array.isArray(t)) {
    const named = t as { name: string; template: string }[];
    const d = named.find((x) => x.name === 'default');
    if (!d) throw new Error(`${file}: "chat_template" holds ${named.map((x) => `"${x.name}"`).join(', ')} and no "default"; kdqat renders the default one`);
    return { text: d.template, file };
  }
  if (file.endsWith('.jinja')) return { text: fs.readFileSync(file, 'utf8'), file };
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); fix or remove it`);
  }
  const text = (j as { chat_template?: unknown })?.chat_template;
  if (typeof text !== 'string') throw new Error(`${file}: has no "chat_template" string; fix or remove it`);
  return { text, file };
}

/** The chat renderer of the tokenizer in `dir` (its tokenizer_config.json and template files), or
 *  undefined when it has none. The template is compiled on first use, so a model whose template
 *  is never needed (plain-text data) is not held to it; one that does not parse is then an error
 *  naming its file. */
export function chatRendererOf(dir: string): ChatRenderer | undefined {
  const cfg = readTokenizerConfig(dir) ?? {};
  const file = templateFile(dir, cfg);
  if (!file) return undefined;
  const specials: Record<string, string> = {};
  for (const t of SPECIAL_TYPES) {
    const s = contentOf(cfg[`${t}_token`]);
    if (s !== null) specials[`${t}_token`] = s;
  }
  let compiled: Template | undefined;
  const compile = (): Template => {
    if (compiled) return compiled;
    const src = templateSource(dir)!;
    try {
      return (compiled = new Template(src.text));
    } catch (e) {
      throw new Error(`${src.file}: the chat template does not parse (${(e as Error).message}); fix it or remove it`);
    }
  };
  return {
    source: file,
    render: (messages: ChatMessage[], opts = {}) => compile().render({ messages, add_generation_prompt: !!opts.generationPrompt, ...specials }),
  };
}

/** `config` (a parsed tokenizer_config.json, or null) with the template of a chat_template.jinja /
 *  chat_template.json beside it filled in as "chat_template" when it has none: what a GGUF file
 *  (tokenizer.chat_template) and an exported folder's tokenizer_config.json should carry. */
export function withChatTemplateFile(config: Record<string, unknown> | null, dir: string): Record<string, unknown> | null {
  if (config?.chat_template !== undefined && config?.chat_template !== null) return config;
  const src = templateSource(dir);
  return src ? { ...(config ?? {}), chat_template: src.text } : config;
}
