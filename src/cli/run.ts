import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parseTomlBounded } from '../core/bounded-toml.ts';
import { CipherMLError } from '../core/errors.ts';
import { readFileTyped } from '../core/io.ts';
import { runSimulationCommand } from './fl.ts';

/** The `[app]` table of a cipherml.toml: what Flower keeps in pyproject.toml beside the run config. */
interface AppTable {
  readonly trainSets: string[] | undefined;
}

function appTable(text: string, path: string): AppTable {
  const doc = parseTomlBounded(text, path, path);
  const app = doc['app'];
  if (app === undefined) return { trainSets: undefined };
  if (typeof app !== 'object' || app === null || Array.isArray(app)) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `[app] must be a table (in ${path})`, { param: 'app' });
  const sets = (app as Record<string, unknown>)['train-sets'];
  if (sets === undefined) return { trainSets: undefined };
  if (!Array.isArray(sets) || sets.length === 0 || !sets.every((s) => typeof s === 'string' && s !== '')) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `expected a non-empty array of CSV paths, got ${JSON.stringify(sets)} (in ${path})`, {
      param: 'app.train-sets',
      advice: 'Write train-sets = ["data/a.csv", "data/b.csv"] under [app], with paths relative to the app folder.',
    });
  }
  return { trainSets: sets as string[] };
}

/**
 * `cipherml run [APP_DIR]`: Flower's `flwr run .` for a cipherml app. Reads `APP_DIR/cipherml.toml`
 * — the run config under `[tool.cipherml]` (or at the top level), Flower's
 * `options.num-supernodes`, and `[app] train-sets` — and runs the federation in one process, from
 * the app folder (so paths in the file are relative to it).
 *
 * @example
 * ```sh
 * npx cipherml run examples/app --run-config "num-server-rounds=3"
 * ```
 */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the federated app described by APP_DIR/cipherml.toml in one process (Flower\'s `flwr run`)')
    .argument('[app-dir]', 'folder holding cipherml.toml', '.')
    .option('--run-config <pairs>', 'overrides of run-config keys, e.g. "num-server-rounds=5 strategy=paillier"')
    .option('--num-supernodes <n>', 'simulated workers (overrides options.num-supernodes)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a positive integer, got "${v}"`, { param: '--num-supernodes' });
      return n;
    })
    .option('--json', 'print JSON lines; the last line is the summary')
    .action(async (appDir: string, o: { runConfig?: string; numSupernodes?: number; json?: boolean }) => {
      const dir = resolve(appDir);
      const path = join(dir, 'cipherml.toml');
      await readFileTyped(path, '[app-dir]').catch((e: unknown) => {
        throw new CipherMLError('CIPHERML_E_IO', `${path} cannot be read`, { param: 'app-dir', cause: e, advice: `Give the folder that holds your app's cipherml.toml (examples/app/cipherml.toml is a template).` });
      });
      const app = appTable(await readFile(path, 'utf8'), path);
      process.chdir(dir);
      await runSimulationCommand({
        config: 'cipherml.toml',
        ...(o.runConfig === undefined ? {} : { runConfig: o.runConfig }),
        ...(o.numSupernodes === undefined ? {} : { numSupernodes: o.numSupernodes }),
        ...(app.trainSets === undefined ? {} : { trainSet: app.trainSets }),
        ...(o.json === undefined ? {} : { json: o.json }),
      });
    });
}
