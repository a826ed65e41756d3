import { InvalidArgumentError } from 'commander';

/**
 * Parses an integer option, naming it in the error.
 *
 * @example
 * ```ts
 * cmd.option('--key-bits <bits>', 'modulus size', intOption('--key-bits'), 2048);
 * ```
 */
export function intOption(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got "${v}"`);
    return n;
  };
}

/** Collects a repeatable option into an array. */
export function collect(v: string, acc: string[] = []): string[] {
  return [...acc, v];
}

/**
 * Parses a TCP port option (0 = any free port), naming the flag in the error.
 *
 * @example
 * ```ts
 * cmd.option('--port <port>', 'TCP port', portOption('--port'), 8080);
 * ```
 */
export function portOption(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n > 65535) {
      throw new InvalidArgumentError(`${name} must be a TCP port from 0 to 65535 (0 picks any free port), got "${v}"`);
    }
    return n;
  };
}
