import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';

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

/**
 * Adds long-flag aliases to a command: `--alias <value>` (hidden from --help) and the environment
 * variable of the same name in upper case (`--onnx-path` → `ONNX_PATH`) set the option `to`
 * (its attribute name). Precedence: a flag, then the option's own variable, then the alias's
 * variable. Used for HE-MAN's flags and variables on `cipherml he`.
 *
 * @example
 * ```ts
 * addAliases(keyparams, { '--onnx-path': 'model', '--calibration-data-path': 'calibration' });
 * ```
 */
export function addAliases(cmd: Command, aliases: Readonly<Record<string, string>>): void {
  for (const [flag, to] of Object.entries(aliases)) {
    const env = flag.replace(/^--/, '').replaceAll('-', '_').toUpperCase();
    const alias = new Option(`${flag} <value>`, `alias of the option "${to}" (HE-MAN)`).hideHelp().env(env);
    const name = alias.name();
    cmd.on(`option:${name}`, (v: string) => cmd.setOptionValueWithSource(to, v, 'cli'));
    // Variables are applied in option order, so the option's own variable has already been read.
    cmd.on(`optionEnv:${name}`, (v: string) => {
      const source = cmd.getOptionValueSource(to);
      if (source === undefined || source === 'default') cmd.setOptionValueWithSource(to, v, 'env');
    });
    cmd.addOption(alias);
  }
}
