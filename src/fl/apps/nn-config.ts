import { join } from 'node:path';
import { readFileBounded } from '../../core/bounded-file.ts';
import { DEFAULT_TOML_LIMITS, parseTomlBounded } from '../../core/bounded-toml.ts';
import { CipherMLError } from '../../core/errors.ts';
import { packageRoot } from '../../core/paths.ts';
import { MODELS, type ModelName } from '../../ml/nn/models.ts';
import { parsePartition, type PartitionScheme } from '../../ml/partition.ts';
import type { ServerOptimizer } from '../strategies-opt.ts';

/**
 * The application keys of a federated image-classification run, Flower-style: the `[app]` table
 * of the run TOML (beside the runtime's `[tool.cipherml]` keys), overridable by flags of the
 * same kebab-case names. The runtime config (rounds, strategy, packing, …) is the runtime's.
 */

/** Validated app keys. */
export interface NnAppConfig {
  readonly dataset: 'mnist' | 'fashion-mnist';
  /** Folder of the four IDX files; "" = the bundled copy of `dataset`. */
  readonly dataDir: string;
  readonly model: ModelName;
  readonly partition: PartitionScheme;
  readonly numClients: number;
  /** Use the first n training images (0: all). */
  readonly trainLimit: number;
  /** Use the first n test images (0: all). */
  readonly testLimit: number;
  readonly momentum: number;
  readonly proximalMu: number;
  readonly serverOptimizer: ServerOptimizer;
  readonly serverLearningRate: number;
  readonly engine: 'wasm' | 'cpu';
}

/** Defaults of {@link NnAppConfig}. */
export const DEFAULT_NN_APP: NnAppConfig = {
  dataset: 'mnist',
  dataDir: '',
  model: 'lenet5',
  partition: { kind: 'dirichlet', alpha: 0.5 },
  numClients: 10,
  trainLimit: 0,
  testLimit: 0,
  momentum: 0.9,
  proximalMu: 0,
  serverOptimizer: 'fedavg',
  serverLearningRate: 0.01,
  engine: 'wasm',
};

/** The [app] keys of a neural-network run (kebab case, as in run.toml and `--run-config`). */
export const NN_APP_KEYS = ['dataset', 'data-dir', 'model', 'partition', 'num-clients', 'train-limit', 'test-limit', 'momentum', 'proximal-mu', 'server-optimizer', 'server-learning-rate', 'engine'] as const;
const KEYS = NN_APP_KEYS;
type Key = (typeof KEYS)[number];

function invalid(message: string, param: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_CONFIG_INVALID', message, { param });
}

function choice<T extends string>(v: unknown, values: readonly T[], param: string): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw invalid(`is ${JSON.stringify(v)}; expected one of ${values.join(', ')}`, param);
  return v as T;
}

function number(v: unknown, param: string, min: number, integer: boolean): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) throw invalid(`is ${JSON.stringify(v)}; expected ${integer ? 'an integer' : 'a number'} ≥ ${min}`, param);
  return n;
}

/**
 * Validates app keys given as kebab-case (TOML, flags) or camelCase (commander) names over
 * `base`; `where` says where they came from for messages (`"--"` for flags).
 *
 * @example
 * ```ts
 * const app = resolveNnApp({ partition: 'shards:2', 'num-clients': 5 });
 * ```
 */
export function resolveNnApp(values: Readonly<Record<string, unknown>>, base: NnAppConfig = DEFAULT_NN_APP, where = '', strict = false): NnAppConfig {
  const out: Record<string, unknown> = { ...base };
  const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  for (const [name, v] of Object.entries(values)) {
    if (v === undefined) continue;
    const key = KEYS.find((k) => k === name || camel(k) === name);
    if (key === undefined) {
      if (strict) throw invalid(`unknown app key ${JSON.stringify(name)}; the [app] keys are ${KEYS.join(', ')}`, name);
      continue;
    }
    const param = `${where}${key}`;
    const set = (k: Key, value: unknown) => (out[camel(k)] = value);
    switch (key) {
      case 'dataset':
        set(key, choice(v, ['mnist', 'fashion-mnist'], param));
        break;
      case 'data-dir':
        if (typeof v !== 'string') throw invalid(`is ${JSON.stringify(v)}; expected a folder path`, param);
        set(key, v);
        break;
      case 'model':
        set(key, choice(v, Object.keys(MODELS) as ModelName[], param));
        break;
      case 'partition':
        if (typeof v !== 'string') throw invalid(`is ${JSON.stringify(v)}; expected iid, shards:K or dirichlet:α`, param);
        set(key, parsePartition(v, param));
        break;
      case 'num-clients':
        set(key, number(v, param, 1, true));
        break;
      case 'train-limit':
      case 'test-limit':
        set(key, number(v, param, 0, true));
        break;
      case 'momentum':
        set(key, number(v, param, 0, false));
        if ((out['momentum'] as number) >= 1) throw invalid(`is ${JSON.stringify(v)}; expected a number in [0, 1)`, param);
        break;
      case 'proximal-mu':
        set(key, number(v, param, 0, false));
        break;
      case 'server-optimizer':
        set(key, choice(v, ['fedavg', 'fedadam', 'fedyogi', 'fedadagrad'], param));
        break;
      case 'server-learning-rate':
        set(key, number(v, param, Number.MIN_VALUE, false));
        break;
      case 'engine':
        set(key, choice(v, ['wasm', 'cpu'], param));
        break;
    }
  }
  return out as unknown as NnAppConfig;
}

/**
 * The `[app]` table of a run TOML, or null when it has none (a logistic-regression run).
 *
 * @example
 * ```ts
 * const app = await readNnApp('examples/fl-mnist/run.toml');
 * ```
 */
export async function readNnApp(path: string): Promise<NnAppConfig | null> {
  const text = new TextDecoder().decode(await readFileBounded(path, 'config', DEFAULT_TOML_LIMITS.maxChars));
  let doc: Record<string, unknown>;
  try {
    doc = parseTomlBounded(text, path, path);
  } catch (e) {
    throw invalid(`${path} is not valid TOML: ${(e as Error).message}`, path);
  }
  const app = doc['app'];
  if (app === undefined) return null;
  if (typeof app !== 'object' || app === null || Array.isArray(app)) throw invalid(`[app] in ${path} must be a table`, 'app');
  return resolveNnApp(app as Record<string, unknown>, DEFAULT_NN_APP, `${path} [app] `, true);
}

/** The folder the dataset is read from. */
export function datasetDir(app: NnAppConfig): string {
  return app.dataDir !== '' ? app.dataDir : join(packageRoot(), 'examples', 'fl-mnist', app.dataset);
}
