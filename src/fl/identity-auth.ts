import { randomBytes } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { assertSigned, loadIdentity, loadRoster, signMessage, type Identity, type IdentityRole, type PublicIdentity, type Roster } from '../core/identity.ts';

/**
 * Party authentication of the federated runtime by identities (src/core/identity.ts) instead of
 * tokens derived from a run secret: every request that needs a credential is signed with the
 * caller's own Ed25519 key, and the callee checks it against its pinned roster. No party can
 * mint another's credential, because none holds another's signing key.
 *
 * Signed requests carry (issued_at_ms, nonce) and name their audience (the callee's identity
 * fingerprint): a request is accepted once, within {@link FRESHNESS_MS} of its issue time, and
 * only by the party it was made for.
 */

/** Signature contexts (domain separation: a signature for one never verifies as another). */
export const SIG_CONTEXT = {
  join: 'cipherml/fl/v1/join',
  authorityRequest: 'cipherml/fl/v1/authority-request',
  keyStatement: 'cipherml/fl/v1/paillier-public-key',
} as const;

/** How far a signed request's issue time may lie from the callee's clock. */
export const FRESHNESS_MS: number = 5 * 60_000;

/** What a party needs to take part in identity mode: its own identity and whom it trusts. */
export interface PartyTrust {
  readonly identity: Identity;
  readonly roster: Roster;
}

/** The signature fields of a signed request (as on the wire). */
export interface RequestSignature {
  readonly signature: Uint8Array;
  readonly issuedAtMs: bigint;
  readonly nonce: Uint8Array;
}

/**
 * Length-prefixed concatenation (u32 big-endian lengths), so no two field lists encode alike.
 *
 * @example
 * ```ts
 * encodeFields(['join', '1']); // 00 00 00 04 'join' 00 00 00 01 '1'
 * ```
 */
export function encodeFields(fields: readonly (string | Uint8Array | bigint | number)[]): Uint8Array {
  const parts: Buffer[] = [];
  for (const f of fields) {
    const b = typeof f === 'string' ? Buffer.from(f, 'utf8') : typeof f === 'bigint' || typeof f === 'number' ? Buffer.from(BigInt(f).toString(10), 'utf8') : Buffer.from(f);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, b);
  }
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * Signs a request for `audience` (the callee's identity fingerprint).
 *
 * @example
 * ```ts
 * const sig = signRequest(me, SIG_CONTEXT.authorityRequest, ['getKeyPair', me.id], authority.fingerprint);
 * ```
 */
export function signRequest(identity: Identity, context: string, fields: readonly (string | Uint8Array)[], audience: string): RequestSignature {
  const issuedAtMs = BigInt(Date.now());
  const nonce = new Uint8Array(randomBytes(16));
  const signature = signMessage(identity, context, encodeFields([...fields, audience, issuedAtMs, nonce]));
  return { signature, issuedAtMs, nonce };
}

/**
 * Remembers the nonces of accepted signed requests for the freshness window, so a captured
 * request cannot be replayed. Memory is bounded: at most `capacity` nonces; when full, new
 * requests are refused until old ones expire (a flood costs the flooder, not the other parties'
 * state).
 *
 * @example
 * ```ts
 * const guard = new ReplayGuard();
 * guard.accept(signer, req, 'join of worker 1'); // a second call with the same request throws REQUEST_STALE
 * ```
 */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  readonly #capacity: number;

  constructor(capacity = 100_000) {
    this.#capacity = capacity;
  }

  /** Throws REQUEST_STALE unless the request is fresh and its nonce unseen; then records it. */
  accept(signer: PublicIdentity, sig: RequestSignature, what: string): void {
    const now = Date.now();
    const at = Number(sig.issuedAtMs);
    if (!Number.isFinite(at) || Math.abs(now - at) > FRESHNESS_MS) {
      throw new CipherMLError('CIPHERML_E_REQUEST_STALE', `${what}: issued at ${new Date(Number.isFinite(at) ? at : 0).toISOString()}, more than ${FRESHNESS_MS / 60_000} minutes from this party's clock`, { param: 'issuedAtMs' });
    }
    if (sig.nonce.length < 16 || sig.nonce.length > 64) throw new CipherMLError('CIPHERML_E_REQUEST_STALE', `${what}: the nonce must have 16–64 bytes`, { param: 'nonce' });
    for (const [k, exp] of this.#seen) {
      if (exp > now) break;
      this.#seen.delete(k);
    }
    const key = `${signer.fingerprint}:${Buffer.from(sig.nonce).toString('hex')}`;
    if (this.#seen.has(key)) throw new CipherMLError('CIPHERML_E_REQUEST_STALE', `${what}: this signed request was already used (replay)`, { param: 'nonce' });
    if (this.#seen.size >= this.#capacity) throw new CipherMLError('CIPHERML_E_REQUEST_STALE', `${what}: too many signed requests in the freshness window; retry later`, { param: 'nonce' });
    this.#seen.set(key, now + FRESHNESS_MS);
  }
}

/**
 * Verifies a signed request from `role` `id` against the roster (pinned key, signature, freshness,
 * one use) and returns the signer. `what` names the request in errors.
 *
 * @example
 * ```ts
 * verifyRequest(trust, guard, 'worker', req.workerId, SIG_CONTEXT.authorityRequest, ['getKeyPair', req.workerId], req, 'key-pair request');
 * ```
 */
export function verifyRequest(trust: PartyTrust, guard: ReplayGuard, role: IdentityRole, id: string, context: string, fields: readonly (string | Uint8Array)[], sig: RequestSignature, what: string): PublicIdentity {
  const signer = trust.roster.require(role, id, what);
  if (sig.signature.length === 0) {
    throw new CipherMLError('CIPHERML_E_UNAUTHENTICATED', `${what}: unsigned; this party runs with identities and accepts only requests signed by a roster identity`, { param: 'signature' });
  }
  assertSigned(signer, context, encodeFields([...fields, trust.identity.fingerprint, sig.issuedAtMs, sig.nonce]), sig.signature, what);
  guard.accept(signer, sig, what);
  return signer;
}

/**
 * The bytes a key authority (or, for key-holder "server", the server) signs to vouch for a Paillier key.
 *
 * @example
 * ```ts
 * const sig = signMessage(authority, SIG_CONTEXT.keyStatement, keyStatement('authority', serializePublicKey(pk)));
 * ```
 */
export function keyStatement(keyHolder: string, publicKey: Uint8Array): Uint8Array {
  return encodeFields(['paillier-public-key', keyHolder, publicKey]);
}

/**
 * The only identity of `role` in the roster; a typed error when there is none or several.
 *
 * @example
 * ```ts
 * const authority = soleParty(roster, 'authority', 'roster');
 * ```
 */
export function soleParty(roster: Roster, role: IdentityRole, param: string): PublicIdentity {
  const all = roster.parties.filter((p) => p.role === role);
  if (all.length !== 1) {
    throw new CipherMLError('CIPHERML_E_IDENTITY_UNKNOWN', `the roster must pin exactly one ${role} identity, it pins ${all.length}`, { param, details: { role, count: all.length } });
  }
  return all[0]!;
}

/**
 * Loads `identity` and `roster` files into a {@link PartyTrust}; null when neither is given (the
 * insecure development mode); a typed error naming the missing flag when only one is.
 *
 * @example
 * ```ts
 * const trust = await loadPartyTrust(config.identity, config.roster, 'worker');
 * ```
 */
export async function loadPartyTrust(identityPath: string, rosterPath: string, role: IdentityRole): Promise<PartyTrust | null> {
  if (identityPath === '' && rosterPath === '') return null;
  if (identityPath === '' || rosterPath === '') {
    const missing = identityPath === '' ? 'identity' : 'roster';
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${missing} is required with ${missing === 'identity' ? 'roster' : 'identity'}: identity mode needs this party's identity file and the roster it trusts`, { param: missing });
  }
  const identity = await loadIdentity(identityPath, 'identity');
  if (identity.role !== role) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${identityPath} is the identity of a ${identity.role}; this party is a ${role}`, { param: 'identity' });
  }
  return { identity, roster: await loadRoster(rosterPath, 'roster') };
}

/** The warning every party prints at start in the insecure development mode. */
export const DEV_MODE_WARNING =
  'WARNING: insecure development mode (no --identity/--roster): credentials are tokens derived from one run secret, so the server can mint any worker\'s token, and Paillier keys are not pinned. Do not use with parties you do not trust (docs/fl.md).';
