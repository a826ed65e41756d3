import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CipherMLError } from '../core/errors.ts';
import { writeFileSafely } from '../core/io.ts';

/**
 * Sealing: data an enclave persists across restarts, encrypted with AES-256-GCM under a key
 * derived (HKDF-SHA-256, RFC 5869) from the measurement of the code and a sealing secret, so that a
 * build with another measurement cannot open it. On real hardware the sealing secret is the
 * platform's sealing key (SGX EGETKEY with MRENCLAVE policy, SEV-SNP MSG_KEY_REQ bound to the
 * measurement, Nitro: a KMS key whose policy names PCR0); in simulation it is a local random file,
 * readable by the machine's operator (docs/enclave.md).
 *
 * Layout: "CMLSEAL1" ‖ salt (32) ‖ iv (12) ‖ ciphertext ‖ tag (16); the measurement is also
 * authenticated as associated data.
 */

const MAGIC = Buffer.from('CMLSEAL1', 'ascii');
const INFO = 'cipherml/seal/v1';

function sealKey(measurement: string, secret: Uint8Array, salt: Uint8Array): Buffer {
  if (!/^[0-9a-f]{64,128}$/.test(measurement)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the measurement must be 32 to 64 bytes of lower-case hex', { param: 'measurement' });
  if (secret.length < 32) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the sealing secret must be at least 32 bytes, got ${secret.length}`, { param: 'sealingSecret' });
  return Buffer.from(hkdfSync('sha256', secret, salt, Buffer.concat([Buffer.from(INFO), Buffer.from(measurement, 'hex')]), 32));
}

/**
 * Seals `plaintext` to `measurement`.
 *
 * @example
 * ```ts
 * const blob = seal(checkpoint, measurement, secret);
 * ```
 */
export function seal(plaintext: Uint8Array, measurement: string, secret: Uint8Array): Uint8Array {
  const salt = randomBytes(32);
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', sealKey(measurement, secret, salt), iv);
  c.setAAD(Buffer.from(measurement, 'hex'));
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([MAGIC, salt, iv, body, c.getAuthTag()]);
}

/**
 * Opens sealed data; refuses (CIPHERML_E_SEALED_DATA) under another measurement or secret, or if
 * any byte changed.
 *
 * @example
 * ```ts
 * const checkpoint = unseal(blob, measurement, secret);
 * ```
 */
export function unseal(sealed: Uint8Array, measurement: string, secret: Uint8Array): Uint8Array {
  const b = Buffer.from(sealed);
  if (b.length < MAGIC.length + 32 + 12 + 16 || !b.subarray(0, MAGIC.length).equals(MAGIC)) throw new CipherMLError('CIPHERML_E_SEALED_DATA', 'not sealed data (no CMLSEAL1 header or too short)', { param: 'sealed' });
  const salt = b.subarray(8, 40);
  const iv = b.subarray(40, 52);
  const tag = b.subarray(b.length - 16);
  const d = createDecipheriv('aes-256-gcm', sealKey(measurement, secret, salt), iv);
  d.setAAD(Buffer.from(measurement, 'hex'));
  d.setAuthTag(tag);
  try {
    return new Uint8Array(Buffer.concat([d.update(b.subarray(52, b.length - 16)), d.final()]));
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_SEALED_DATA', 'authentication failed: sealed under another measurement or sealing secret, or altered', { param: 'sealed', cause: e });
  }
}

/**
 * Creates a simulation sealing secret file (32 random bytes, mode 0600); refuses to overwrite.
 *
 * @example
 * ```ts
 * await createSealingSecret('aggregator.sealing-secret');
 * ```
 */
export async function createSealingSecret(path: string): Promise<Uint8Array> {
  const secret = randomBytes(32);
  await writeFileSafely(path, secret, { mode: 0o600 });
  return new Uint8Array(secret);
}

/** Reads a sealing secret file. */
export async function loadSealingSecret(path: string, param = '--sealing-secret'): Promise<Uint8Array> {
  let b: Buffer;
  try {
    b = await readFile(path);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_IO', `cannot read the sealing secret ${path}`, { param, cause: e });
  }
  if (b.length !== 32) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${path} must hold exactly 32 bytes, it has ${b.length}`, { param });
  return new Uint8Array(b);
}
