import { parse, TomlError } from 'smol-toml';
import { CipherMLError } from './errors.ts';

/**
 * TOML (v1.0.0) run configs, policies and app files parsed against limits: the text size first,
 * then smol-toml with its inline-nesting limit, `__proto__`/`constructor` keys refused, and the
 * result walked without recursion to bound the depth that dotted keys and table headers build
 * (smol-toml's `maxDepth` covers inline arrays and tables only) and the number of keys. Every
 * refusal is a `CIPHERML_E_CONFIG_INVALID` (or `CIPHERML_E_INPUT_TOO_LARGE`) naming the flag or
 * file that gave the text.
 */

/** Limits of {@link parseTomlBounded}. */
export interface TomlLimits {
  /** Largest accepted text, in UTF-16 code units. */
  readonly maxChars: number;
  /** Deepest accepted nesting of tables and arrays, however written. */
  readonly maxDepth: number;
  /** Most accepted keys and array elements in total. */
  readonly maxKeys: number;
}

/** Defaults: 1 Mi characters, depth 32, 100,000 keys — far above any config cipherml reads. */
export const DEFAULT_TOML_LIMITS: TomlLimits = { maxChars: 1 << 20, maxDepth: 32, maxKeys: 100_000 };

function invalid(problem: string, param: string, details: Record<string, unknown>, cause?: unknown): CipherMLError {
  return new CipherMLError('CIPHERML_E_CONFIG_INVALID', problem, { param, details, ...(cause === undefined ? {} : { cause }) });
}

/**
 * Parses `text` as TOML within `limits`. `source` names the file in messages, `param` the flag
 * or file the user gave (errors carry it).
 *
 * @example
 * ```ts
 * parseTomlBounded('num-server-rounds = 3\n', 'run.toml', '--config'); // { 'num-server-rounds': 3 }
 * parseTomlBounded(`a = ${'['.repeat(100)}${']'.repeat(100)}`, 'run.toml', '--config'); // throws CIPHERML_E_CONFIG_INVALID
 * ```
 */
export function parseTomlBounded(text: string, source: string, param: string, limits: Partial<TomlLimits> = {}): Record<string, unknown> {
  const l: TomlLimits = { ...DEFAULT_TOML_LIMITS, ...limits };
  if (text.length > l.maxChars) {
    throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `${source} holds ${text.length} characters; a TOML file read here may hold at most ${l.maxChars}`, {
      param,
      details: { source, limit: l.maxChars, actual: text.length },
      advice: `Check that ${param} names the intended TOML file.`,
    });
  }
  let doc: Record<string, unknown>;
  try {
    doc = parse(text, { unsafeKeyBehaviour: 'throw', maxDepth: l.maxDepth });
  } catch (e) {
    if (e instanceof TomlError) {
      const reason = (e.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
      throw invalid(`invalid TOML at line ${e.line}, column ${e.column}: ${reason}`, param, { source, line: e.line, column: e.column, excerpt: e.codeblock }, e);
    }
    throw invalid(`invalid TOML: ${(e as Error).message}`, param, { source }, e);
  }
  let keys = 0;
  const stack: [unknown, number][] = [[doc, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object' || v instanceof Date) continue;
    if (depth >= l.maxDepth) throw invalid(`${source} nests tables or arrays deeper than ${l.maxDepth} levels`, param, { source, maxDepth: l.maxDepth });
    const children = Array.isArray(v) ? v : Object.values(v);
    keys += children.length;
    if (keys > l.maxKeys) throw invalid(`${source} holds more than ${l.maxKeys} keys and array elements`, param, { source, maxKeys: l.maxKeys });
    for (const c of children) stack.push([c, depth + 1]);
  }
  return doc;
}
