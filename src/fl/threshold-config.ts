import { CipherMLError } from '../core/errors.ts';
import type { RunConfig } from './config.ts';

/**
 * Run-config keys of key-holder "threshold" (rows of RUN_CONFIG_SCHEMA in src/fl/config.ts) and
 * their cross-field rules.
 */
export const THRESHOLD_CONFIG_ROWS = [
  { key: 'threshold', field: 'threshold', type: 'string', default: '', description: 'Key-holder "threshold": "k-of-L", any k of the L key holders decrypt (e.g. "2-of-3"); must match threshold-public-key.' },
  { key: 'threshold-public-key', field: 'thresholdPublicKey', type: 'string', format: 'path', default: '', description: 'Key-holder "threshold": the dealer\'s threshold.pub (from `cipherml paillier threshold-keygen`).' },
  { key: 'threshold-fingerprint', field: 'thresholdFingerprint', type: 'string', default: '', description: 'Key-holder "threshold": pinned fingerprint (64 hex digits) of threshold-public-key; a key with another fingerprint is refused.' },
  { key: 'threshold-holders', field: 'thresholdHolders', type: 'string', default: '', description: 'Key-holder "threshold": comma-separated host:port of the key holders (`cipherml key-holder`), at least k of them.' },
  { key: 'threshold-roster', field: 'thresholdRoster', type: 'string', format: 'path', default: '', description: 'Key-holder "threshold": roster of the workers\' public identities; the server refuses unsigned updates on arrival (the key holders check their own roster in any case).' },
] as const;

/**
 * Cross-field rules: key-holder "threshold" needs strategy "paillier", threshold,
 * threshold-public-key and threshold-holders; the threshold keys are set only with it;
 * threshold-fingerprint is 64 hex digits.
 *
 * @example
 * ```ts
 * checkThresholdConfig(config); // throws CIPHERML_E_CONFIG_INVALID naming the key
 * ```
 */
export function checkThresholdConfig(config: RunConfig): void {
  const bad = (param: string, problem: string) => new CipherMLError('CIPHERML_E_CONFIG_INVALID', problem, { param });
  if (config.thresholdFingerprint !== '' && !/^[0-9a-f]{64}$/i.test(config.thresholdFingerprint)) {
    throw bad('threshold-fingerprint', `${JSON.stringify(config.thresholdFingerprint)} is not a 64-hex-digit threshold key fingerprint (printed by \`cipherml paillier threshold-keygen\`)`);
  }
  if (config.threshold !== '' && !/^\d{1,3}-of-\d{1,3}$/.test(config.threshold)) throw bad('threshold', `${JSON.stringify(config.threshold)} is not "k-of-L" (e.g. "2-of-3")`);
  if (config.keyHolder !== 'threshold') {
    for (const [key, field] of [
      ['threshold', 'threshold'],
      ['threshold-public-key', 'thresholdPublicKey'],
      ['threshold-holders', 'thresholdHolders'],
    ] as const) {
      if (config[field] !== '') throw bad(key, `is set but key-holder is "${config.keyHolder}"; set key-holder = "threshold" or remove ${key}`);
    }
    return;
  }
  if (config.strategy !== 'paillier') throw bad('strategy', `key-holder "threshold" decrypts Paillier aggregates; strategy is "${config.strategy}" (set strategy = "paillier")`);
  for (const [key, field] of [
    ['threshold', 'threshold'],
    ['threshold-public-key', 'thresholdPublicKey'],
    ['threshold-holders', 'thresholdHolders'],
  ] as const) {
    if (config[field] === '') throw bad(key, 'is required when key-holder is "threshold"');
  }
}
