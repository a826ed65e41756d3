import { defences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import { verifyMessage, type Roster } from '../core/identity.ts';
import { MIN_RECEIVED_KEY_BITS, assertReceivedPublicKey, deserializePublicKey, type PaillierPublicKey } from '../paillier/index.ts';
import { SIG_CONTEXT, keyStatement } from './identity-auth.ts';

/**
 * Which Paillier public key a worker encrypts under. A worker's update is only as private as the
 * key it is encrypted under, and the key arrives from the server, the party it must be hidden
 * from; so the key is accepted only when
 * - its fingerprint (over n and h_s) equals the pinned `paillier-key-fingerprint`, or
 * - it carries the signature of the pinned vouching party over (key holder ‖ key): the key
 *   authority for key-holder "authority"/"clients", the server only for key-holder "server"
 *   and only when the roster pins no authority (else a server could vouch for its own key);
 * and, either way, its modulus has at least 2048 bits and h_s is not of order 1 or 2.
 */

/** A worker's key-trust settings. */
export interface KeyTrust {
  /** `paillier-key-fingerprint`: the only key accepted (empty: none pinned). */
  readonly pinnedFingerprint: string;
  /** The worker's roster (null in the insecure development mode). */
  readonly roster: Roster | null;
  /** Smallest modulus accepted; default 2048. Lower only in tests (`--insecure-min-key-bits`). */
  readonly minKeyBits?: number;
}

/** What the server (or the authority) offers: the key, the announced key holder and the vouching signature. */
export interface OfferedKey {
  readonly publicKey: Uint8Array;
  readonly keyHolder: string;
  readonly keySignature: Uint8Array;
  readonly keySignerId: string;
}

/**
 * Accepts or refuses an offered Paillier key; `from` names the offering party in errors.
 *
 * @example
 * ```ts
 * const pk = acceptPaillierKey({ publicKey: reply.publicKey, keyHolder: reply.keyHolder, keySignature: reply.keySignature, keySignerId: reply.keySignerId }, trust, 'server');
 * ```
 */
export function acceptPaillierKey(offer: OfferedKey, trust: KeyTrust, from: string): PaillierPublicKey {
  const pk = deserializePublicKey(offer.publicKey);
  assertReceivedPublicKey(pk, 'publicKey', trust.minKeyBits ?? MIN_RECEIVED_KEY_BITS);
  if (!defences.keyPinning) return pk;
  if (trust.pinnedFingerprint !== '') {
    if (pk.fingerprint !== trust.pinnedFingerprint.toLowerCase()) {
      throw new CipherMLError('CIPHERML_E_KEY_NOT_PINNED', `the ${from} offered Paillier key ${pk.fingerprint}, but paillier-key-fingerprint pins ${trust.pinnedFingerprint}`, {
        param: 'paillier-key-fingerprint',
        details: { offered: pk.fingerprint, pinned: trust.pinnedFingerprint },
      });
    }
    return pk;
  }
  const roster = trust.roster;
  if (roster === null) return pk;
  const hasAuthority = roster.parties.some((p) => p.role === 'authority');
  const role = offer.keyHolder === 'server' ? 'server' : 'authority';
  if (role === 'server' && hasAuthority) {
    throw new CipherMLError('CIPHERML_E_DOWNGRADE', `the ${from} announced key-holder "server" and vouches for its own key ${pk.fingerprint}, but the roster pins a key authority: only the authority's key is accepted`, {
      param: 'key-holder',
      details: { offered: pk.fingerprint },
    });
  }
  const signer = roster.parties.find((p) => p.role === role && p.id === offer.keySignerId) ?? roster.parties.find((p) => p.role === role);
  if (signer === undefined) {
    throw new CipherMLError('CIPHERML_E_KEY_NOT_PINNED', `the ${from} offered Paillier key ${pk.fingerprint} for key-holder "${offer.keyHolder}", but the roster pins no ${role} to vouch for it`, { param: 'roster', details: { offered: pk.fingerprint } });
  }
  if (!verifyMessage(signer, SIG_CONTEXT.keyStatement, keyStatement(offer.keyHolder, offer.publicKey), offer.keySignature)) {
    throw new CipherMLError('CIPHERML_E_KEY_NOT_PINNED', `the ${from} offered Paillier key ${pk.fingerprint}, which is not signed by the pinned ${role} ${signer.id} (identity ${signer.fingerprint.slice(0, 16)}…)`, {
      param: 'publicKey',
      details: { offered: pk.fingerprint, pinnedSigner: signer.fingerprint },
    });
  }
  return pk;
}

/**
 * The one key-size setting (`--insecure-min-key-bits`, option `minKeyBits`): a party accepts a
 * received Paillier modulus of at least MIN_RECEIVED_KEY_BITS (2048) bits, or, for tests only, of
 * at least the given 1024…2048 bits. Everything that lowers the minimum goes through this
 * helper: the worker flags, the demos and the benchmark that start parties for a key size they
 * chose themselves, the simulation and the server fetching the authority's key.
 */
export const INSECURE_MIN_KEY_BITS_FLAG = '--insecure-min-key-bits';

/**
 * Checks an `--insecure-min-key-bits` value and returns the `minKeyBits` option it sets
 * (`{}` when absent).
 *
 * @example
 * ```ts
 * runWorker({ ...options, ...minKeyBitsOption(o.insecureMinKeyBits) }); // 1024 → { minKeyBits: 1024 }
 * ```
 */
export function minKeyBitsOption(bits: number | undefined, param: string = INSECURE_MIN_KEY_BITS_FLAG): { minKeyBits?: number } {
  if (bits === undefined) return {};
  if (!Number.isInteger(bits) || bits < 1024 || bits > MIN_RECEIVED_KEY_BITS) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${param} must be an integer within 1024..${MIN_RECEIVED_KEY_BITS} (it lowers the ${MIN_RECEIVED_KEY_BITS}-bit minimum for tests), got ${String(bits)}`, { param });
  }
  return bits === MIN_RECEIVED_KEY_BITS ? {} : { minKeyBits: bits };
}

/**
 * The minimum for parties started by the operator who chose the key size `keyBits` (demos,
 * benchmark, simulation, a server fetching its authority's key): `keyBits` itself when it is a
 * test size below 2048, else the default. As a `minKeyBits` option, or as worker CLI flags.
 *
 * @example
 * ```ts
 * keySizeFor(1024).option; // { minKeyBits: 1024 }
 * keySizeFor(1024).flags;  // ['--insecure-min-key-bits', '1024']
 * keySizeFor(2048).flags;  // []
 * ```
 */
export function keySizeFor(keyBits: number, param = 'key-bits'): { readonly option: { minKeyBits?: number }; readonly flags: readonly string[] } {
  const option = keyBits >= MIN_RECEIVED_KEY_BITS ? {} : minKeyBitsOption(keyBits, param);
  return { option, flags: option.minKeyBits === undefined ? [] : [INSECURE_MIN_KEY_BITS_FLAG, String(option.minKeyBits)] };
}
