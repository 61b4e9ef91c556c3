// `kdqat generate`: continue a prompt with a causal LM (greedy by default), printing the new
// text as it is produced.
// The model modules are imported when the command runs (see eval.ts).
import * as path from 'node:path';
import { Command } from 'commander';
import type { LoadedTokenizer } from '../tokenize/index.js';

export interface GenerateCliOptions {
  model?: string;
  tokenizer?: string;
  prompt?: string;
  chat?: string;
  system?: string;
  maxNewTokens?: string;
  temperature?: string;
  topK?: string;
  seed?: string;
  json?: boolean;
}

export function generateCommand(): Command {
  return new Command('generate')
    .description('continue a prompt with a causal LM (LLaMA model directory)')
    .requiredOption('--model <dir>', 'Hugging Face model directory')
    .option('--prompt <text>', 'text to continue')
    .option('--chat <message>', 'a user message to answer, rendered with the model\'s chat template (tokenizer_config.json) with the assistant\'s turn opened')
    .option('--system <text>', '--chat: a system message before it')
    .option('--tokenizer <file>', 'tokenizer.json to use when the model directory has none')
    .option('--max-new-tokens <n>', 'most tokens to generate (stops earlier at EOS)', '64')
    .option('--temperature <t>', '0 = greedy (most likely token); > 0 samples from softmax(logits / t)', '0')
    .option('--top-k <k>', 'sample only among the k most likely tokens (0 = all)', '0')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--json', 'print one JSON object {prompt, promptTokens, continuation, tokens, stoppedAtEos}')
    .addHelpText('after', '\nExamples:\n  kdqat generate --model out/llama --prompt "The state of the Union is"\n' +
      '  kdqat generate --model runs/qat-instruct/student --chat "Name three rivers." --system "Answer briefly."\n' +
      '  kdqat generate --model out/llama --prompt "Fellow citizens," --temperature 0.8 --top-k 40 --seed 1 --max-new-tokens 100')
    .action(async (opts: GenerateCliOptions) => {
      await runGenerate(opts, (s) => process.stdout.write(s));
    });
}

/** Prompt ids: the tokenizer's own special tokens (BOS for LLaMA-style tokenizers, as HF's
 *  generate sees them), but without a trailing EOS a post-processor may add — the text is
 *  meant to go on. An empty prompt starts from BOS (or EOS, GPT-2's start of text). */
export function promptIds(tok: LoadedTokenizer, prompt: string, bos: number | undefined, eos: number[]): number[] {
  const ids = tok.encode(prompt);
  const plain = tok.encode(prompt, { addSpecialTokens: false });
  if (ids.length > plain.length && eos.includes(ids[ids.length - 1]) && !eos.includes(plain[plain.length - 1])) ids.pop();
  if (ids.length === 0) {
    const start = bos ?? eos[0];
    if (start === undefined) throw new Error('--prompt is empty and the tokenizer has no BOS/EOS token to start from; give some prompt text');
    ids.push(start);
  }
  return ids;
}

export async function runGenerate(opts: GenerateCliOptions, write: (s: string) => void): Promise<{ continuation: string; tokens: number[]; stoppedAtEos: boolean; promptTokens: number[] }> {
  const { UsageError } = await import('../train/usage.js');
  if ((opts.prompt === undefined) === (opts.chat === undefined)) throw new UsageError('give one of --prompt TEXT (text to continue) and --chat MESSAGE (a message to answer)');
  if (opts.system !== undefined && opts.chat === undefined) throw new UsageError('--system goes with --chat');
  const { describeModel, eosIds, openModel, openTokenizer, positiveInt, specialIds } = await import('./open-model.js');
  const { archOf } = await import('../models/model.js');
  const { generate } = await import('../models/generate.js');
  const temperature = Number(opts.temperature ?? '0');
  if (!Number.isFinite(temperature) || temperature < 0) throw new Error(`--temperature must be a number ≥ 0, got ${JSON.stringify(opts.temperature)}`);
  const maxNewTokens = positiveInt('--max-new-tokens', opts.maxNewTokens, 64);
  const topK = positiveInt('--top-k', opts.topK, 0, 0);
  const seed = positiveInt('--seed', opts.seed, 0, 0);
  const m = openModel(opts.model);
  if (archOf(m.model).kind !== 'decoder') throw new Error(`--model ${m.dir} is ${describeModel(m)}; generate needs a causal LM (LLaMA-family decoder)`);
  const tok = openTokenizer(m, opts.tokenizer);
  const eos = eosIds(m, tok);
  const bos = specialIds(m).bos ?? tok.specials.bos;
  const prompt = opts.chat !== undefined ? await chatPromptIds(m.dir, tok, opts.chat, opts.system) : promptIds(tok, opts.prompt!, bos, eos);

  // Stream the text as it grows; hold back a trailing U+FFFD, which is usually a character
  // whose UTF-8 bytes are split over tokens and will complete with the next one.
  const generated: number[] = [];
  let shown = '';
  const text = (): string => tok.decode(generated.filter((id) => !eos.includes(id)), { skipSpecialTokens: true });
  const r = generate(m.model, prompt, {
    maxNewTokens, temperature, topK, seed, eosIds: eos, weight: m.weight,
    onToken: (id) => {
      generated.push(id);
      if (opts.json) return;
      const t = text().replace(/\uFFFD+$/, '');
      if (t.startsWith(shown) && t.length > shown.length) {
        write(t.slice(shown.length));
        shown = t;
      }
    },
  });
  const continuation = text();
  if (opts.json) {
    write(`${JSON.stringify({ prompt: opts.prompt ?? opts.chat, promptTokens: prompt, continuation, tokens: r.tokens, stoppedAtEos: r.stoppedAtEos })}\n`);
  } else {
    if (continuation.startsWith(shown)) write(continuation.slice(shown.length));
    write('\n');
  }
  return { continuation, tokens: r.tokens, stoppedAtEos: r.stoppedAtEos, promptTokens: prompt };
}

/** --chat: [system?, user] rendered with the template and the assistant's turn opened
 *  (add_generation_prompt), tokenized as apply_chat_template does (no special tokens added: the
 *  template writes them). */
async function chatPromptIds(dir: string, tok: LoadedTokenizer, message: string, system: string | undefined): Promise<number[]> {
  const { chatRendererOf } = await import('../io/chat-template.js');
  const r = chatRendererOf(path.dirname(tok.path));
  if (!r) throw new Error(`--chat: ${dir} has no chat template (tokenizer_config.json "chat_template", chat_template.jinja); use --prompt for plain text`);
  const messages = [...(system !== undefined ? [{ role: 'system', content: system }] : []), { role: 'user', content: message }];
  let text: string;
  try {
    text = r.render(messages, { generationPrompt: true });
  } catch (e) {
    throw new Error(`--chat: the chat template of ${r.source} could not render the conversation: ${(e as Error).message}`);
  }
  const ids = tok.encode(text, { addSpecialTokens: false });
  if (ids.length === 0) throw new Error(`--chat: the chat template of ${r.source} renders the conversation to no tokens`);
  return ids;
}
