// Typed access to one Hugging Face config.json, shared by the architecture records' parsers:
// every error names the file and the key (STYLE.md 11).
export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Typed accessors over one config.json that name the file and the key in every error. */
export class ConfigReader {
  constructor(readonly file: string, readonly j: Obj) {}
  fail(msg: string): never { throw new Error(`${this.file}: ${msg}`); }
  has(k: string): boolean { return this.j[k] !== undefined && this.j[k] !== null; }
  int(k: string, dflt?: number, min = 1): number {
    const v = this.j[k];
    if (v === undefined || (v === null && dflt !== undefined)) {
      if (dflt === undefined) this.fail(`missing required key "${k}" (an integer); add it to config.json`);
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(`"${k}" must be an integer, got ${JSON.stringify(v)}`);
    if ((v as number) < min) this.fail(`"${k}" must be ≥ ${min}, got ${v}`);
    return v as number;
  }
  num(k: string, dflt: number, lo = 0): number {
    const v = this.j[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`"${k}" must be a number, got ${JSON.stringify(v)}`);
    if ((v as number) < lo) this.fail(`"${k}" must be ≥ ${lo}, got ${v}`);
    return v as number;
  }
  bool(k: string, dflt: boolean): boolean {
    const v = this.j[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') this.fail(`"${k}" must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }
  str(k: string, dflt: string): string {
    const v = this.j[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'string') this.fail(`"${k}" must be a string, got ${JSON.stringify(v)}`);
    return v as string;
  }
  /** A token id: null/absent → null (an integer ≥ 0 otherwise). */
  tokenId(k: string): number | null {
    return this.j[k] === undefined || this.j[k] === null ? null : this.int(k, undefined, 0);
  }
  /** The first of "architectures" that is in `known` (null when the key is absent). */
  architectures(known: string[]): string | null {
    const a = this.j.architectures;
    if (a === undefined || a === null) return null;
    if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) this.fail(`"architectures" must be a list of class names`);
    const hit = (a as string[]).find((x) => known.includes(x));
    if (!hit) this.fail(`architectures ${JSON.stringify(a)} are not supported for model_type "${this.j.model_type}"; supported: ${known.join(', ')}`);
    return hit;
  }
  /** hidden_size divisible by num_attention_heads. */
  heads(hidden: number, h: number): void {
    if (hidden % h !== 0) this.fail(`hidden_size ${hidden} is not divisible by num_attention_heads ${h}; fix one of them`);
  }
}
