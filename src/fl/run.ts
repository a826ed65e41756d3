import type { Transport } from '@connectrpc/connect';
import { randomBytes } from 'node:crypto';
import { parseTomlBounded } from '../core/bounded-toml.ts';
import { CipherMLError } from '../core/errors.ts';
import { signMessage } from '../core/identity.ts';
import { generatePaillierKeyPair, serializePublicKey, type PackingSpec, type PaillierKeyPair } from '../paillier/index.ts';
import { authorityKeyHolder } from './authority.ts';
import { keySizeFor } from './key-pinning.ts';
import { SIG_CONTEXT, keyStatement, type PartyTrust } from './identity-auth.ts';
import { parseRunConfigToml, RUN_CONFIG_SCHEMA, type RunConfig } from './config.ts';
import type { ServerSettings } from './server.ts';
import { SecAggFedAvg, type SecAggSettings } from './secagg.ts';
import { PaillierFedAvg, PlainFedAvg, type Strategy } from './strategy.ts';
import { buildThresholdStrategy, type ThresholdBuildOptions } from './threshold-run.ts';

/**
 * Wiring from a validated run config to the runtime's parts, shared by the CLI, the simulation
 * and the demo so that every entry point builds the same server and strategy.
 */

/** Packing used for Paillier FedAvg: headroom for every worker that may contribute to one sum. */
export function packingFor(config: RunConfig): PackingSpec {
  return { fractionalBits: config.packingFractionalBits, integerBits: config.packingIntegerBits, maxContributions: config.packingMaxContributions === 0 ? Math.max(1000, config.minAvailableClients) : config.packingMaxContributions };
}

/** The fit config sent to workers every round. */
export function fitConfigOf(config: RunConfig): Record<string, string> {
  return {
    'local-epochs': String(config.localEpochs),
    'batch-size': String(config.batchSize),
    'learning-rate': String(config.learningRate),
    l2: String(config.l2),
  };
}

/**
 * Server settings of a run config.
 *
 * @example
 * ```ts
 * const settings = serverSettings(await loadRunConfig({ path: 'run.toml' }));
 * ```
 */
export function serverSettings(config: RunConfig, overrides: Partial<ServerSettings> = {}): ServerSettings {
  return {
    address: config.address,
    numRounds: config.numServerRounds,
    fractionFit: config.fractionFit,
    fractionEvaluate: config.fractionEvaluate,
    minFitClients: config.minFitClients,
    minEvaluateClients: config.minEvaluateClients,
    minAvailableClients: config.minAvailableClients,
    roundTimeoutMs: config.roundTimeout * 1000,
    joinTimeoutMs: config.joinTimeout * 1000,
    evalEvery: config.evalEvery,
    runDir: expandRunDir(config.runDir, config),
    secret: config.token,
    maxMessageBytes: config.maxMessageBytes,
    ...(config.tlsCert !== '' ? { tls: { cert: config.tlsCert, key: config.tlsKey, ca: config.tlsCa } } : {}),
    fitConfig: fitConfigOf(config),
    seed: config.seed,
    ...(config.authorityAddress !== '' ? { authorityAddress: config.authorityAddress } : {}),
    ...overrides,
  };
}

/**
 * Secure-aggregation settings of a run config (MindSpore's and Flower's keys).
 *
 * @example
 * ```ts
 * const strategy = new SecAggFedAvg(secAggSettings(resolveRunConfig({ flags: { strategy: 'secagg' } })));
 * ```
 */
export function secAggSettings(config: RunConfig): SecAggSettings {
  return {
    mode: config.secureAggregation === 'off' ? 'pw' : config.secureAggregation,
    clippingRange: config.clippingRange,
    quantizationRange: config.quantizationRange,
    modulusRange: config.modulusRange,
    threshold: config.reconstructSecretsThreshold,
    shareSecretsRatio: config.shareSecretsRatio,
    stageTimeoutMs: config.cipherTimeWindow,
    numShares: config.numShares,
    collusion: config.collusionModel === 'server-clients',
    onViolation: config.thresholdViolation,
    corruptFraction: config.secaggCorruptFraction,
    dropoutRate: config.secaggDropoutRate,
    statisticalSecurity: config.secaggStatisticalSecurity,
  };
}

/** Options of {@link buildStrategy}. */
export interface BuildStrategyOptions {
  /** Transport to the key authority (key-holder "authority" or "clients"). */
  readonly authorityTransport?: Transport;
  /** A key pair to use for key-holder "server" instead of generating one. */
  readonly keyPair?: PaillierKeyPair;
  /** Key-holder "threshold": per-round reports and test hooks (src/fl/threshold-run.ts). */
  readonly threshold?: ThresholdBuildOptions;
  /** Identity mode: the server's identity and roster (null: insecure development mode). */
  readonly trust?: PartyTrust | null;
}

/**
 * The strategy of a run config: plain FedAvg, or Paillier FedAvg with its key holder. For
 * key-holder "server" the server generates the key pair here; otherwise it asks the authority for
 * the public key and never holds the secret key.
 *
 * @example
 * ```ts
 * const strategy = await buildStrategy(config, { authorityTransport });
 * ```
 */
export async function buildStrategy(config: RunConfig, options: BuildStrategyOptions = {}): Promise<Strategy> {
  if (config.strategy === 'plain') return new PlainFedAvg();
  if (config.strategy === 'secagg') return new SecAggFedAvg(secAggSettings(config));
  const packing = packingFor(config);
  if (config.keyHolder === 'threshold') return buildThresholdStrategy(config, packing, options.threshold ?? {});
  if (config.keyHolder === 'server') {
    const pair = options.keyPair ?? (await generatePaillierKeyPair({ bits: config.keyBits }));
    const t = options.trust ?? null;
    // Key-holder "server": the server vouches for its own key (workers accept that only when their roster pins no authority).
    const vouch = t === null ? undefined : { keySignature: signMessage(t.identity, SIG_CONTEXT.keyStatement, keyStatement('server', serializePublicKey(pair.publicKey))), keySignerId: t.identity.id };
    return new PaillierFedAvg({ kind: 'server', privateKey: pair.privateKey, ...(vouch === undefined ? {} : { vouch }) }, packing);
  }
  if (options.authorityTransport === undefined) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `key-holder "${config.keyHolder}" needs authority-address`, { param: 'authority-address' });
  }
  return new PaillierFedAvg(await authorityKeyHolder(options.authorityTransport, { keyHolder: config.keyHolder, secret: config.token, trust: options.trust ?? null, ...keySizeFor(config.keyBits).option }), packing);
}


/**
 * The run folder with its placeholders filled in: `{time}` (UTC, to the second, plus 4 random hex
 * digits so two runs started in the same second differ) and `{strategy}`. The default run-dir,
 * `runs/{time}-{strategy}`, thus names a new folder for every run.
 *
 * @example
 * ```ts
 * expandRunDir('runs/{time}-{strategy}', config); // 'runs/20261207-041500-3fa2-paillier'
 * ```
 */
export function expandRunDir(runDir: string, config: Pick<RunConfig, 'strategy'>, now: Date = new Date()): string {
  if (!runDir.includes('{')) return runDir;
  const time = `${now.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}-${randomBytes(2).toString('hex')}`;
  return runDir.replaceAll('{time}', time).replaceAll('{strategy}', config.strategy);
}

/** Splits `key=value key2="two words"` at spaces outside quotes. */
function splitPairs(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  for (const ch of text) {
    if (quote !== undefined) {
      cur += ch;
      if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur += ch;
    } else if (/\s/.test(ch)) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quote !== undefined) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `unterminated ${quote} in ${JSON.stringify(text)}`, { param: '--run-config', advice: 'Close the quote, e.g. --run-config \'strategy="paillier" num-server-rounds=5\'.' });
  if (cur !== '') out.push(cur);
  return out;
}

/** The `key = value` TOML lines of a `--run-config` text (a bare word that is not a TOML value becomes a string). */
function overrideLines(text: string): { key: string; line: string }[] {
  const out: { key: string; line: string }[] = [];
  for (const pair of splitPairs(text)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `expected key=value, got ${JSON.stringify(pair)}`, {
        param: '--run-config',
        advice: 'Write space-separated key=value pairs with run-config keys, e.g. --run-config "num-server-rounds=5 learning-rate=0.05" (`cipherml server --help` lists the keys).',
      });
    }
    const key = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    try {
      parseTomlBounded(`v = ${value}`, '--run-config', '--run-config');
    } catch {
      value = JSON.stringify(value);
    }
    out.push({ key, line: `${key} = ${value}` });
  }
  return out;
}

/**
 * Parses Flower's `--run-config "key=value key2=value2"` override into run-config fields. Values
 * are TOML values (`5`, `0.1`, `true`, `"text"`); a bare word that is not a TOML value is taken as
 * a string, so `strategy=paillier` works as Flower users expect. An unknown key is refused
 * (CIPHERML_E_CONFIG_INVALID naming it).
 *
 * @example
 * ```ts
 * parseRunConfigOverrides('num-server-rounds=5 strategy=paillier'); // { numServerRounds: 5, strategy: 'paillier' }
 * ```
 */
export function parseRunConfigOverrides(text: string): Partial<RunConfig> {
  return parseRunConfigToml(overrideLines(text).map((l) => l.line).join('\n'), '--run-config');
}

/**
 * `--run-config` for a run whose app has keys of its own (Flower's run config holds both): the
 * runtime's keys as {@link parseRunConfigOverrides} gives them, and the app's (`appKeys`, kebab
 * case) as TOML values for the app to check. A key of neither is refused, naming it.
 *
 * @example
 * ```ts
 * splitRunConfigOverrides('dataset=fashion-mnist local-epochs=2', ['dataset']); // { runtime: { localEpochs: 2 }, app: { dataset: 'fashion-mnist' } }
 * ```
 */
export function splitRunConfigOverrides(text: string, appKeys: readonly string[]): { runtime: Partial<RunConfig>; app: Record<string, unknown> } {
  const app: Record<string, unknown> = {};
  const runtime: string[] = [];
  for (const { key, line } of overrideLines(text)) {
    if (appKeys.includes(key)) app[key] = parseTomlBounded(line.replace(/^[^=]*=/, 'v ='), '--run-config', '--run-config')['v'];
    else if (RUN_CONFIG_SCHEMA.some((s) => s.key === key)) runtime.push(line);
    else throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `unknown key ${JSON.stringify(key)} (in --run-config): neither a runtime key (see --help) nor an app key (${appKeys.join(', ')})`, { param: key });
  }
  return { runtime: parseRunConfigToml(runtime.join('\n'), '--run-config'), app };
}

/** Flower's federation options of a simulation (`options.num-supernodes`). */
export interface SimulationPlan {
  /** Workers to start. */
  readonly numSupernodes: number;
  /** Where the number came from, to name in errors. */
  readonly source: string;
}

/**
 * Reads `options.num-supernodes` (top level or under `[tool.cipherml]`) from a run-config TOML.
 *
 * @example
 * ```ts
 * numSupernodesOf('options.num-supernodes = 5\n', 'run.toml'); // 5
 * ```
 */
export function numSupernodesOf(text: string, source: string): number | undefined {
  let doc: Record<string, unknown>;
  try {
    doc = parseTomlBounded(text, source, source);
  } catch {
    return undefined; // the run-config parser reports syntax errors with line and column
  }
  const tool = (doc['tool'] as Record<string, unknown> | undefined)?.['cipherml'] as Record<string, unknown> | undefined;
  const options = (tool?.['options'] ?? doc['options']) as Record<string, unknown> | undefined;
  const n = options?.['num-supernodes'];
  if (n === undefined) return undefined;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 10_000) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `expected an integer from 1 to 10000, got ${JSON.stringify(n)} (in ${source})`, {
      param: 'options.num-supernodes',
      advice: 'Set options.num-supernodes to the number of simulated workers, at least min-available-clients.',
    });
  }
  return n;
}

/**
 * How many workers a simulation starts and a fail-fast check that they can satisfy the config:
 * `options.num-supernodes` when given, else one per training file but at least
 * min-available-clients. Refuses, before any work, a count that cannot fill a round.
 *
 * @example
 * ```ts
 * planSimulation(config, { numSupernodes: undefined, trainSets: 2 }); // { numSupernodes: 2, source: 'default' }
 * ```
 */
export function planSimulation(config: RunConfig, o: { readonly numSupernodes: number | undefined; readonly numSupernodesSource?: string; readonly trainSets: number }): SimulationPlan {
  if (o.numSupernodes === undefined) return { numSupernodes: Math.max(o.trainSets, config.minAvailableClients, config.minFitClients), source: 'default' };
  const source = o.numSupernodesSource ?? 'options.num-supernodes';
  const need = Math.max(config.minAvailableClients, config.minFitClients);
  if (o.numSupernodes < need) {
    const which = config.minAvailableClients >= config.minFitClients ? `min-available-clients = ${config.minAvailableClients}` : `min-fit-clients = ${config.minFitClients}`;
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${o.numSupernodes} simulated workers cannot satisfy ${which}: no round could start`, {
      param: source,
      details: { numSupernodes: o.numSupernodes, minAvailableClients: config.minAvailableClients, minFitClients: config.minFitClients },
      advice: `Raise ${source} to at least ${need}, or lower ${which.split(' ')[0]} to ${o.numSupernodes} or less.`,
    });
  }
  return { numSupernodes: o.numSupernodes, source };
}

/**
 * Which training file and which contiguous shard of it worker `i` of `n` trains on: workers are
 * dealt round-robin over the files, and the workers on one file split it evenly.
 *
 * @example
 * ```ts
 * shardOf(3, 5, 2); // { file: 1, shard: 2, of: 2 }   (1-based shard of its file)
 * ```
 */
export function shardOf(i: number, n: number, files: number): { file: number; shard: number; of: number } {
  const file = i % files;
  const of = Math.floor((n - 1 - file) / files) + 1;
  return { file, shard: Math.floor(i / files) + 1, of };
}
