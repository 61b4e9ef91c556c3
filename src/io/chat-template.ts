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
import { readTokenizerConfig } from './tokenizer_config.js';

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

/** The template source and where it was read, or null when the directory has none. */
function templateSource(dir: string): { text: string; file: string } | null {
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = readTokenizerConfig(dir);
  const t = cfg?.chat_template;
  if (typeof t === 'string') return { text: t, file: cfgFile };
  if (Array.isArray(t)) {
    const named = t as { name: string; template: string }[];
    const d = named.find((x) => x.name === 'default');
    if (!d) throw new Error(`${cfgFile}: "chat_template" holds ${named.map((x) => `"${x.name}"`).join(', ')} and no "default"; kdqat renders the default one`);
    return { text: d.template, file: cfgFile };
  }
  const jinja = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinja)) return { text: fs.readFileSync(jinja, 'utf8'), file: jinja };
  const json = path.join(dir, 'chat_template.json');
  if (fs.existsSync(json)) {
    let j: unknown;
    try {
      j = JSON.parse(fs.readFileSync(json, 'utf8'));
    } catch (e) {
      throw new Error(`${json}: not valid JSON (${(e as Error).message}); fix or remove it`);
    }
    const text = (j as { chat_template?: unknown })?.chat_template;
    if (typeof text !== 'string') throw new Error(`${json}: has no "chat_template" string; fix or remove it`);
    return { text, file: json };
  }
  return null;
}

/** The chat renderer of the tokenizer in `dir` (its tokenizer_config.json and template files), or
 *  undefined when it has none. The template is compiled on first use, so a model whose template
 *  is never needed (plain-text data) is not held to it; one that does not parse is then an error
 *  naming its file. */
export function chatRendererOf(dir: string): ChatRenderer | undefined {
  const cfg = readTokenizerConfig(dir) ?? {};
  const has = cfg.chat_template !== undefined && cfg.chat_template !== null ||
    fs.existsSync(path.join(dir, 'chat_template.jinja')) || fs.existsSync(path.join(dir, 'chat_template.json'));
  if (!has) return undefined;
  const specials: Record<string, string> = {};
  for (const k of SPECIAL_KEYS) {
    const v = cfg[k];
    const s = typeof v === 'string' ? v : typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;
    if (s !== undefined) specials[k] = s;
  }
  let compiled: { template: Template; file: string } | undefined;
  const compile = (): { template: Template; file: string } => {
    if (compiled) return compiled;
    const src = templateSource(dir)!;
    try {
      compiled = { template: new Template(src.text), file: src.file };
    } catch (e) {
      throw new Error(`${src.file}: the chat template does not parse (${(e as Error).message}); fix it or remove it`);
    }
    return compiled;
  };
  return {
    get source() { return templateSource(dir)?.file ?? dir; },
    render: (messages: ChatMessage[], opts = {}) => compile().template.render({ messages, add_generation_prompt: !!opts.generationPrompt, ...specials }),
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
