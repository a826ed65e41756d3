import { CipherMLError } from '../core/errors.ts';
import { loadRoster } from '../core/identity.ts';
import type { PackingSpec } from '../paillier/index.ts';
import { parseThresholdLabel } from '../paillier/threshold.ts';
import { readThresholdPublicKeyFile } from '../paillier/threshold-serialize.ts';
import type { RunConfig } from './config.ts';
import { ThresholdFedAvg, type ThresholdFedAvgOptions } from './threshold-strategy.ts';
import { createRpcTransport, parseAddress } from './transport.ts';

/** Extra options of the threshold strategy that do not come from the run config. */
export type ThresholdBuildOptions = Pick<ThresholdFedAvgOptions, 'onRound'>;

/**
 * The server's threshold strategy from a run config: reads threshold-public-key (refusing one
 * whose fingerprint is not threshold-fingerprint, when pinned), checks that it is the
 * `threshold` k-of-L key, and connects to the threshold-holders.
 *
 * @example
 * ```ts
 * const strategy = await buildThresholdStrategy(config, packingFor(config));
 * ```
 */
export async function buildThresholdStrategy(config: RunConfig, packing: PackingSpec, options: ThresholdBuildOptions = {}): Promise<ThresholdFedAvg> {
  const publicKey = await readThresholdPublicKeyFile(config.thresholdPublicKey, { pin: config.thresholdFingerprint }, 'threshold-public-key');
  const want = parseThresholdLabel(config.threshold, 'threshold');
  if (want.threshold !== publicKey.threshold || want.holders !== publicKey.holders) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `threshold = "${config.threshold}" but ${config.thresholdPublicKey} is a ${publicKey.label} key`, { param: 'threshold' });
  }
  const addresses = config.thresholdHolders.split(',').map((a) => a.trim()).filter((a) => a !== '');
  addresses.forEach((a) => parseAddress(a, 'threshold-holders'));
  // The server verifies each holder against tls-ca and, with its own tls-cert, presents it (holders started with --tls-ca require it).
  const tls = { tls: { ca: config.tlsCa, ...(config.tlsCert === '' ? {} : { cert: config.tlsCert, key: config.tlsKey }) } };
  const holders = addresses.map((address) => ({ name: address, transport: createRpcTransport({ address, maxMessageBytes: config.maxMessageBytes, ...tls }) }));
  const roster = config.thresholdRoster === '' ? undefined : await loadRoster(config.thresholdRoster, 'threshold-roster');
  return new ThresholdFedAvg({ publicKey, packing, holders, holderTimeoutMs: config.roundTimeout * 1000, ...(roster === undefined ? {} : { roster }), ...options });
}
