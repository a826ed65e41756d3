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
