// Conversations in a text corpus: JSON Lines whose lines hold a chat instead of a "text", in the
// layouts of the chat and instruction datasets, turned into the text a model reads:
//   messages       [{"role", "content"}]: the Hugging Face / OpenAI chat layout (smoltalk,
//                  UltraChat, …), rendered with the model's chat template;
//   conversations  [{"from", "value"}]: ShareGPT (from human → user, gpt → assistant; system,
//                  user, assistant, tool as they are), rendered the same way;
//   prompt + completion: TRL's prompt-completion layout. Strings are plain text (prompt +
//                  completion, as TRL joins them); lists of messages are one conversation,
//                  rendered.
//   instruction [+ input] + output: Alpaca's layout, one user turn (the instruction, and the
//                  input after a blank line when there is one) and the assistant's output,
//                  rendered.
// A message's content is a string, or a list of parts in the OpenAI / multimodal layout
// ([{"type": "text", "text": …}, …]): text parts are joined with newlines (as vLLM does for a
// text-only model), any other part is an error naming it.
// Rendering is the renderer's business (io/chat-template.ts: the chat_template of the model's
// tokenizer_config.json, as transformers' apply_chat_template renders it); a corpus of
// conversations for a model without one is an error naming the file, the line and the fix.
// A layout is one record in CHAT_LAYOUTS; the first line of a file picks it (text.ts).
import { DataError } from './errors.js';

export interface ChatMessage { role: string; content: string }

/** Renders a conversation to the text the model reads: a whole one to train on, or, with
 *  generationPrompt, one that ends where the assistant's answer begins. */
export interface ChatRenderer {
  render(messages: ChatMessage[], opts?: { generationPrompt?: boolean }): string;
  /** Where the template comes from, for messages. */
  source: string;
}

/** What one line holds: a conversation to render, or plain text. */
export type ChatLine = { messages: ChatMessage[] } | { text: string };

export interface ChatLayout {
  name: string;
  /** The fields that select it (all present on a file's first line). */
  fields: readonly string[];
  read(o: Record<string, unknown>, fail: (problem: string, fix?: string) => never): ChatLine;
}

const SHAREGPT_ROLES: Record<string, string> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system', tool: 'tool' };

/** The text of a content given as a list of parts, or undefined when it is not one. */
function partsText(v: unknown, where: string, fail: (p: string, f?: string) => never): string | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const texts: string[] = [];
  for (const [j, part] of (v as unknown[]).entries()) {
    const o = part as Record<string, unknown>;
    if (typeof part !== 'object' || part === null || typeof o.type !== 'string') return undefined;
    if (o.type !== 'text') {
      fail(`${where}[${j}] is a "${o.type}" part: a language model reads text parts ({"type": "text", "text": string}) only`, 'drop the line, or keep only its text parts');
    }
    if (typeof o.text !== 'string') fail(`${where}[${j}] is a text part without a "text" string, got ${JSON.stringify(part)?.slice(0, 80)}`);
    texts.push(o.text as string);
  }
  return texts.join('\n');
}

function messageList(v: unknown, key: string, roleKey: string, contentKey: string, fail: (p: string, f?: string) => never, roles?: Record<string, string>): ChatMessage[] {
  const example = `[{"${roleKey}": "${roles ? 'human' : 'user'}", "${contentKey}": "Hi"}, …]`;
  if (!Array.isArray(v) || v.length === 0) fail(`"${key}" must be a non-empty list of messages, got ${JSON.stringify(v)?.slice(0, 80)}`, `e.g. "${key}": ${example}`);
  return (v as unknown[]).map((m, i) => {
    const o = m as Record<string, unknown>;
    const content = typeof m === 'object' && m !== null
      ? typeof o[contentKey] === 'string' ? o[contentKey] as string : partsText(o[contentKey], `"${key}"[${i}].${contentKey}`, fail)
      : undefined;
    if (typeof m !== 'object' || m === null || typeof o[roleKey] !== 'string' || content === undefined) {
      fail(`"${key}"[${i}] must be {"${roleKey}": string, "${contentKey}": string or a list of text parts}, got ${JSON.stringify(m)?.slice(0, 80)}`, `e.g. ${example}`);
    }
    const from = o[roleKey] as string;
    const role = roles ? roles[from] : from;
    if (role === undefined) fail(`"${key}"[${i}].${roleKey} is ${JSON.stringify(from)}`, `use one of ${Object.keys(roles!).join(', ')}`);
    return { role, content: content! };
  });
}

export const CHAT_LAYOUTS: readonly ChatLayout[] = [
  { name: 'messages', fields: ['messages'], read: (o, fail) => ({ messages: messageList(o.messages, 'messages', 'role', 'content', fail) }) },
  {
    name: 'conversations (ShareGPT)', fields: ['conversations'],
    read: (o, fail) => ({ messages: messageList(o.conversations, 'conversations', 'from', 'value', fail, SHAREGPT_ROLES) }),
  },
  {
    name: 'prompt-completion', fields: ['prompt', 'completion'],
    read: (o, fail) => {
      if (typeof o.prompt === 'string' && typeof o.completion === 'string') return { text: o.prompt + o.completion };
      if (Array.isArray(o.prompt) && Array.isArray(o.completion)) {
        return { messages: [...messageList(o.prompt, 'prompt', 'role', 'content', fail), ...messageList(o.completion, 'completion', 'role', 'content', fail)] };
      }
      return fail('"prompt" and "completion" must both be strings (plain text) or both lists of messages',
        'e.g. {"prompt": "The capital of France is", "completion": " Paris."}');
    },
  },
  {
    name: 'alpaca', fields: ['instruction', 'output'],
    read: (o, fail) => {
      for (const k of ['instruction', 'input', 'output']) {
        if (o[k] !== undefined && typeof o[k] !== 'string') fail(`"${k}" must be a string, got ${JSON.stringify(o[k])?.slice(0, 80)}`, 'e.g. {"instruction": "Name three rivers.", "input": "", "output": "The Nile, …"}');
      }
      const input = (o.input as string | undefined) ?? '';
      return { messages: [{ role: 'user', content: input ? `${o.instruction}\n\n${input}` : o.instruction as string }, { role: 'assistant', content: o.output as string }] };
    },
  },
];

/** The chat layout a file's first line selects, or undefined (it has a "text", or nothing known). */
export function chatLayoutOf(first: Record<string, unknown>): ChatLayout | undefined {
  return 'text' in first ? undefined : CHAT_LAYOUTS.find((l) => l.fields.every((k) => k in first));
}

/** The text of one line of a chat layout: rendered by `chat` when it is a conversation. */
export function chatLineText(layout: ChatLayout, o: Record<string, unknown>, file: string, line: number, chat: ChatRenderer | undefined): { text: string; rendered: boolean } {
  const fail = (problem: string, fix?: string): never => { throw new DataError(file, line, `${problem} (${layout.name} layout)`, fix); };
  for (const k of layout.fields) if (!(k in o)) fail(`missing field "${k}"`, `the first line is in the ${layout.name} layout, so every line needs ${layout.fields.map((f) => `"${f}"`).join(' and ')}`);
  const r = layout.read(o, fail);
  if ('text' in r) return { text: r.text, rendered: false };
  if (!chat) {
    return fail('this line is a conversation, and the model has no chat template to render it with',
      'use a model whose tokenizer_config.json has a "chat_template" (an instruct/chat model), or give the lines a "text" field');
  }
  try {
    return { text: chat.render(r.messages), rendered: true };
  } catch (e) {
    return fail(`the chat template of ${chat.source} could not render it: ${(e as Error).message}`, 'check the roles and their order against the template');
  }
}
