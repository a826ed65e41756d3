import type { Transport } from '@connectrpc/connect';
import { CipherMLError } from '../core/errors.ts';
import { signMessage } from '../core/identity.ts';
import { generatePaillierKeyPair, serializePublicKey, type PackingSpec, type PaillierKeyPair } from '../paillier/index.ts';
import { authorityKeyHolder } from './authority.ts';
import { SIG_CONTEXT, keyStatement, type PartyTrust } from './identity-auth.ts';
import type { RunConfig } from './config.ts';
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
  return { fractionalBits: config.packingFractionalBits, integerBits: config.packingIntegerBits, maxContributions: Math.max(1000, config.minAvailableClients) };
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
    runDir: config.runDir,
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
  return new PaillierFedAvg(await authorityKeyHolder(options.authorityTransport, { keyHolder: config.keyHolder, secret: config.token, trust: options.trust ?? null, minKeyBits: Math.min(2048, config.keyBits) }), packing);
}

