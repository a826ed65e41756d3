/**
 * Party identities: one long-term Ed25519 signing key per party (server, worker, key authority,
 * key holder, aggregator, operator), and the pinned public identities other parties accept.
 *
 * Invariants:
 * - A signature is over `"cipherml-sig-v1" ‖ 0x00 ‖ context ‖ 0x00 ‖ payload`, so a signature made
 *   for one protocol message (context) never verifies as another (domain separation, as in
 *   RFC 8032 §8.3's advice for Ed25519 contexts).
 * - An identity's fingerprint is SHA-256 over the role, the id and the raw 32-byte public key, so
 *   pinning a fingerprint pins all three.
 * - Secret identity files are written 0600 and refused when group/other can read them.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, verify as edVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { CipherMLError } from './errors.ts';
import { readFileTyped, writeFileSafely } from './io.ts';

/** The roles a party can play. */
export const IDENTITY_ROLES = ['server', 'worker', 'authority', 'key-holder', 'aggregator', 'operator'] as const;
/** A party's role. */
export type IdentityRole = (typeof IDENTITY_ROLES)[number];

/** The public half of an identity: what others pin and verify against. */
export interface PublicIdentity {
  readonly id: string;
  readonly role: IdentityRole;
  /** Raw Ed25519 public key, 32 bytes. */
  readonly publicKey: Uint8Array;
  /** Hex SHA-256 over role, id and public key. */
  readonly fingerprint: string;
}

/** A party's own identity, with its signing key. Never leaves the party. */
export interface Identity extends PublicIdentity {
  readonly secretKey: KeyObject;
}

const SIG_DOMAIN = 'cipherml-sig-v1';
const FP_DOMAIN = 'cipherml-identity-v1';
const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;
// SPKI DER prefix of an Ed25519 public key (RFC 8410 §4): SEQUENCE, AlgorithmIdentifier 1.3.101.112, BIT STRING.
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

function checkId(id: unknown, param: string): asserts id is string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `identity id ${JSON.stringify(id)} must be 1–128 characters of letters, digits and . _ : @ -`, { param });
  }
}

function checkRole(role: unknown, param: string): asserts role is IdentityRole {
  if (!(IDENTITY_ROLES as readonly unknown[]).includes(role)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `identity role ${JSON.stringify(role)} is not one of ${IDENTITY_ROLES.join(', ')}`, { param });
  }
}

/**
 * The fingerprint that pins a party: hex SHA-256 over (domain, role, id, raw public key).
 *
 * @example
 * ```ts
 * identityFingerprint('worker', '1', pub.publicKey); // 'a3f1…' (64 hex digits)
 * ```
 */
export function identityFingerprint(role: IdentityRole, id: string, publicKey: Uint8Array): string {
  const h = createHash('sha256');
  for (const part of [FP_DOMAIN, role, id]) {
    const b = Buffer.from(part, 'utf8');
    h.update(Buffer.from([b.length >>> 8, b.length & 0xff]));
    h.update(b);
  }
  h.update(publicKey);
  return h.digest('hex');
}

function rawPublicKey(key: KeyObject): Uint8Array {
  const der = key.export({ type: 'spki', format: 'der' });
  return new Uint8Array(der.subarray(der.length - 32));
}

function publicKeyObject(raw: Uint8Array, param: string): KeyObject {
  if (raw.length !== 32) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `an Ed25519 public key has 32 bytes, got ${raw.length}`, { param });
  const der = new Uint8Array(ED25519_SPKI_PREFIX.length + 32);
  der.set(ED25519_SPKI_PREFIX);
  der.set(raw, ED25519_SPKI_PREFIX.length);
  try {
    return createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'not a valid Ed25519 public key', { param, cause: e });
  }
}

/**
 * Makes a new identity with a fresh Ed25519 key.
 *
 * @example
 * ```ts
 * const me = generateIdentity('worker', 'hospital-a');
 * ```
 */
export function generateIdentity(role: IdentityRole, id: string): Identity {
  checkRole(role, 'role');
  checkId(id, 'id');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  return { id, role, publicKey: raw, fingerprint: identityFingerprint(role, id, raw), secretKey: privateKey };
}

/**
 * The public half of an identity (safe to publish and pin).
 *
 * @example
 * ```ts
 * const pub = publicIdentity(generateIdentity('server', 'ps'));
 * ```
 */
export function publicIdentity(identity: PublicIdentity): PublicIdentity {
  return { id: identity.id, role: identity.role, publicKey: identity.publicKey, fingerprint: identity.fingerprint };
}

function signedBytes(context: string, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(SIG_DOMAIN, 'utf8'), Buffer.from([0]), Buffer.from(context, 'utf8'), Buffer.from([0]), payload]);
}

/**
 * Signs `payload` for one protocol `context` (e.g. `"secagg/advertise-keys"`).
 *
 * @example
 * ```ts
 * const sig = signMessage(me, 'fl/contribution', bytes); // 64 bytes
 * ```
 */
export function signMessage(identity: Identity, context: string, payload: Uint8Array): Uint8Array {
  return new Uint8Array(edSign(null, signedBytes(context, payload), identity.secretKey));
}

/**
 * True when `signature` is `signer`'s signature of `payload` in `context`. Never throws on a
 * malformed signature: a wrong length is simply false.
 *
 * @example
 * ```ts
 * if (!verifyMessage(pub, 'fl/contribution', bytes, sig)) throw new Error('forged');
 * ```
 */
export function verifyMessage(signer: PublicIdentity, context: string, payload: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  const key = publicKeyObject(signer.publicKey, 'publicKey');
  return edVerify(null, signedBytes(context, payload), key, signature);
}

/**
 * Like {@link verifyMessage} but throws `CIPHERML_E_SIGNATURE_INVALID` naming the signer and the
 * message, for protocol code that must refuse.
 *
 * @example
 * ```ts
 * assertSigned(pub, 'fl/contribution', bytes, sig, 'contribution of worker 3 in round 2');
 * ```
 */
export function assertSigned(signer: PublicIdentity, context: string, payload: Uint8Array, signature: Uint8Array, what: string): void {
  if (!verifyMessage(signer, context, payload, signature)) {
    throw new CipherMLError('CIPHERML_E_SIGNATURE_INVALID', `${what} does not carry a valid signature of ${signer.role} ${signer.id} (fingerprint ${signer.fingerprint.slice(0, 16)}…)`, {
      param: 'signature',
      details: { signer: signer.id, role: signer.role, fingerprint: signer.fingerprint, context },
    });
  }
}

interface IdentityFileJson {
  format: 'cipherml-identity';
  version: 1;
  role: IdentityRole;
  id: string;
  publicKey: string;
  fingerprint: string;
  secretKey?: string;
}

/** Serializes a public identity as JSON (for rosters and `--trust` files). */
export function publicIdentityToJson(pub: PublicIdentity): IdentityFileJson {
  return { format: 'cipherml-identity', version: 1, role: pub.role, id: pub.id, publicKey: Buffer.from(pub.publicKey).toString('base64'), fingerprint: pub.fingerprint };
}

/**
 * Parses a public identity from its JSON form, checking that the fingerprint matches.
 *
 * @example
 * ```ts
 * const pub = publicIdentityFromJson(JSON.parse(text), 'trust[0]');
 * ```
 */
export function publicIdentityFromJson(value: unknown, param: string): PublicIdentity {
  const v = value as Partial<IdentityFileJson> | null;
  if (v === null || typeof v !== 'object' || v.format !== 'cipherml-identity' || v.version !== 1) {
    throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a cipherml identity (expected format "cipherml-identity", version 1)', { param });
  }
  checkRole(v.role, `${param}.role`);
  checkId(v.id, `${param}.id`);
  if (typeof v.publicKey !== 'string') throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'identity has no publicKey', { param: `${param}.publicKey` });
  const raw = new Uint8Array(Buffer.from(v.publicKey, 'base64'));
  publicKeyObject(raw, `${param}.publicKey`);
  const fingerprint = identityFingerprint(v.role, v.id, raw);
  if (v.fingerprint !== undefined && v.fingerprint !== fingerprint) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `identity fingerprint ${String(v.fingerprint).slice(0, 16)}… does not match its key (${fingerprint.slice(0, 16)}…)`, { param: `${param}.fingerprint` });
  }
  return { id: v.id, role: v.role, publicKey: raw, fingerprint };
}

/**
 * Writes a secret identity file (0600, never overwriting) and its public half beside it
 * (`<path>.pub`, 0644).
 *
 * @example
 * ```ts
 * await saveIdentity('worker-1.id', generateIdentity('worker', '1'));
 * ```
 */
export async function saveIdentity(path: string, identity: Identity): Promise<void> {
  const pkcs8 = identity.secretKey.export({ type: 'pkcs8', format: 'der' });
  const secret: IdentityFileJson = { ...publicIdentityToJson(identity), secretKey: Buffer.from(pkcs8).toString('base64') };
  await writeFileSafely(path, `${JSON.stringify(secret, null, 2)}\n`, { mode: 0o600 });
  await writeFileSafely(`${path}.pub`, `${JSON.stringify(publicIdentityToJson(identity), null, 2)}\n`, { mode: 0o644 });
}

function parseJson(bytes: Uint8Array, path: string, param: string): unknown {
  if (bytes.length > 64 * 1024) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `${path} is ${bytes.length} bytes; an identity file is under 64 KiB`, { param });
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${path} is not JSON`, { param, cause: e });
  }
}

/**
 * Loads a secret identity file, refusing one readable by group or others.
 *
 * @example
 * ```ts
 * const me = await loadIdentity('worker-1.id', '--identity');
 * ```
 */
export async function loadIdentity(path: string, param = 'identity'): Promise<Identity> {
  const st = await stat(path).catch((e: unknown) => {
    throw new CipherMLError('CIPHERML_E_IO', `cannot read identity file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { param, cause: e });
  });
  if ((st.mode & 0o077) !== 0) {
    throw new CipherMLError('CIPHERML_E_KEY_FILE_INSECURE', `identity file ${path} holds a signing key and is readable by others (mode ${(st.mode & 0o777).toString(8)})`, { param, details: { path } });
  }
  const json = parseJson(await readFileTyped(path, param), path, param) as Partial<IdentityFileJson>;
  const pub = publicIdentityFromJson(json, param);
  if (typeof json.secretKey !== 'string') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${path} is a public identity (no signing key); pass the secret identity file, not the .pub`, { param });
  }
  let secretKey: KeyObject;
  try {
    secretKey = createPrivateKey({ key: Buffer.from(json.secretKey, 'base64'), format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${path}: the signing key cannot be read`, { param, cause: e });
  }
  const raw = rawPublicKey(createPublicKey(secretKey));
  if (Buffer.compare(Buffer.from(raw), Buffer.from(pub.publicKey)) !== 0) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${path}: the signing key does not match the public key recorded beside it`, { param });
  }
  return { ...pub, secretKey };
}

/**
 * Loads a public identity file (`*.pub`, or a secret file whose public half is used).
 *
 * @example
 * ```ts
 * const server = await loadPublicIdentity('server.id.pub', '--trust-server');
 * ```
 */
export async function loadPublicIdentity(path: string, param: string): Promise<PublicIdentity> {
  return publicIdentityFromJson(parseJson(await readFileTyped(path, param), path, param), param);
}

/**
 * The set of identities a party accepts, looked up by role and id. Built from pinned public
 * identities (a roster); an id of the right role with another key is refused.
 *
 * @example
 * ```ts
 * const roster = new Roster([serverPub, w1, w2]);
 * roster.require('worker', '1', 'Join of worker 1');
 * ```
 */
export class Roster {
  readonly #byKey = new Map<string, PublicIdentity>();

  constructor(parties: readonly PublicIdentity[]) {
    for (const p of parties) {
      const k = `${p.role}\u0000${p.id}`;
      const prev = this.#byKey.get(k);
      if (prev !== undefined && prev.fingerprint !== p.fingerprint) {
        throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `the roster names ${p.role} ${p.id} twice with different keys`, { param: 'roster', details: { id: p.id, role: p.role } });
      }
      this.#byKey.set(k, p);
    }
  }

  /** Every pinned identity. */
  get parties(): readonly PublicIdentity[] {
    return [...this.#byKey.values()];
  }

  /** The pinned identity of `role` `id`, or undefined. */
  get(role: IdentityRole, id: string): PublicIdentity | undefined {
    return this.#byKey.get(`${role}\u0000${id}`);
  }

  /** The pinned identity of `role` `id`; throws `CIPHERML_E_IDENTITY_UNKNOWN` naming `what` otherwise. */
  require(role: IdentityRole, id: string, what: string): PublicIdentity {
    const p = this.get(role, id);
    if (p === undefined) {
      throw new CipherMLError('CIPHERML_E_IDENTITY_UNKNOWN', `${what}: ${role} ${JSON.stringify(id)} is not in the pinned roster`, { param: 'roster', details: { role, id } });
    }
    return p;
  }

  /**
   * Checks that a presented public identity is the pinned one (same key), naming both
   * fingerprints when it is not.
   */
  check(presented: PublicIdentity, what: string): PublicIdentity {
    const pinned = this.require(presented.role, presented.id, what);
    if (pinned.fingerprint !== presented.fingerprint) {
      throw new CipherMLError('CIPHERML_E_IDENTITY_UNKNOWN', `${what}: ${presented.role} ${presented.id} presented key ${presented.fingerprint.slice(0, 16)}…, but ${pinned.fingerprint.slice(0, 16)}… is pinned`, {
        param: 'roster',
        details: { presented: presented.fingerprint, pinned: pinned.fingerprint },
      });
    }
    return pinned;
  }
}

/**
 * Loads a roster file: a JSON array of public identities (as written to `*.pub`).
 *
 * @example
 * ```ts
 * const roster = await loadRoster('roster.json', '--roster');
 * ```
 */
export async function loadRoster(path: string, param: string): Promise<Roster> {
  const bytes = await readFileTyped(path, param);
  if (bytes.length > 16 * 1024 * 1024) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `${path} is over 16 MiB; a roster lists public identities only`, { param });
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${path} is not JSON`, { param, cause: e });
  }
  if (!Array.isArray(value)) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${path} must be a JSON array of public identities`, { param });
  return new Roster(value.map((v, i) => publicIdentityFromJson(v, `${param}[${i}]`)));
}
