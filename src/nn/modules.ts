// Parameter names → (layer, module kind) under a family's rules, and selection of parameters by
// name pattern. Shared by quantization configs, freeze policies and the signal-propagation logs,
// so that "v_proj" means the same parameters everywhere. The rules themselves belong to the
// architecture records (src/models), which this layer does not import.

/** Where a parameter sits: its layer (null outside the blocks) and its module kind. */
export interface ModuleRef {
  layer: number | null;
  /** q k v o gate up down (LLaMA) / query key value attn-out ffn-in ffn-out (the encoders) /
   *  norm, embed, head, classifier / other; each architecture record lists its rules and its
   *  Linear kinds (src/models/*.ts modules.rules, modules.kinds). */
  kind: string;
}

/** Name → kind rules, first match wins (an architecture record's modules.rules). */
export type KindRules = readonly (readonly [RegExp, string])[];

/** `model.layers.3.self_attn.v_proj.weight` → { layer: 3, kind: 'v' } under `rules`; the
 *  registry's moduleOf (src/models/registry.ts) passes every record's rules. */
export function moduleIn(name: string, rules: KindRules): ModuleRef {
  const m = /(?:^|\.)(?:layers|layer)\.(\d+)\./.exec(name);
  const layer = m ? Number(m[1]) : null;
  for (const [re, kind] of rules) if (re.test(name)) return { layer, kind };
  return { layer, kind: 'other' };
}

/**
 * Does parameter `name` match `pattern`? Three forms:
 * - `re:<regex>`: the regular expression, searched anywhere in the name;
 * - a glob containing `*` (any run of characters) or `?`, matched against the whole name;
 * - otherwise a run of whole dot-separated segments: `v_proj`, `layers.0.mlp`,
 *   `attention.output.dense` (which matches weight and bias alike).
 */
export function matchesPattern(name: string, pattern: string): boolean {
  if (pattern.startsWith('re:')) return new RegExp(pattern.slice(3)).test(name);
  if (/[*?]/.test(pattern)) {
    const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    return new RegExp(`^${re}$`).test(name);
  }
  return `.${name}.`.includes(`.${pattern}.`);
}

/**
 * The names matched by any of `patterns`. A pattern that matches nothing is an error (a typo
 * must not silently select nothing); `what` names the option in the message.
 */
export function selectByPatterns(names: Iterable<string>, patterns: readonly string[], what: string): Set<string> {
  const all = [...names];
  const out = new Set<string>();
  for (const pat of patterns) {
    if (pat.startsWith('re:')) {
      try {
        new RegExp(pat.slice(3));
      } catch (e) {
        throw new Error(`${what}: '${pat}' is not a valid regular expression (${(e as Error).message})`);
      }
    }
    const hit = all.filter((n) => matchesPattern(n, pat));
    if (hit.length === 0) {
      const sample = all.filter((n) => /\.0\.|^[^.]*\.[^.]*$/.test(n)).slice(0, 12).join(', ');
      throw new Error(`${what}: pattern '${pat}' matches no parameter of this model (names look like: ${sample})`);
    }
    for (const n of hit) out.add(n);
  }
  return out;
}
