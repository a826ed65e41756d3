import { stat } from 'node:fs/promises';
import { CipherMLError } from '../core/errors.ts';
import { readFileTyped, writeFileSafely } from '../core/io.ts';
import type { PaillierKeyOptions, PaillierKeyPair, PaillierPrivateKey, PaillierPublicKey } from './keys.ts';
import { deserializePrivateKey, deserializePublicKey, serializePrivateKey, serializePublicKey } from './serialize.ts';

/**
 * Writes `path` (secret key, mode 0600) and `path.pub` (public key, 0644). Existing files are
 * never overwritten unless `overwrite` is set.
 *
 * @example
 * ```ts
 * await writeKeyPairFiles('keys/paillier', await generatePaillierKeyPair());
 * ```
 */
export async function writeKeyPairFiles(path: string, pair: PaillierKeyPair, options: { overwrite?: boolean } = {}): Promise<{ secretKeyPath: string; publicKeyPath: string }> {
  const publicKeyPath = `${path}.pub`;
  const overwrite = options.overwrite ?? false;
  await writeFileSafely(path, serializePrivateKey(pair.privateKey), { mode: 0o600, overwrite });
  await writeFileSafely(publicKeyPath, serializePublicKey(pair.publicKey), { mode: 0o644, overwrite });
  return { secretKeyPath: path, publicKeyPath };
}

/**
 * Reads a public key file.
 *
 * @example
 * ```ts
 * const pk = await readPublicKeyFile('keys/paillier.pub');
 * ```
 */
export async function readPublicKeyFile(path: string, options: PaillierKeyOptions = {}): Promise<PaillierPublicKey> {
  return deserializePublicKey(await readFileTyped(path, 'publicKeyPath'), options);
}

/**
 * Reads a secret key file; refuses one that group or others can read (it would have leaked).
 *
 * @example
 * ```ts
 * const sk = await readPrivateKeyFile('keys/paillier');
 * ```
 */
export async function readPrivateKeyFile(path: string, options: PaillierKeyOptions = {}): Promise<PaillierPrivateKey> {
  const bytes = await readFileTyped(path, 'secretKeyPath');
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new CipherMLError('CIPHERML_E_KEY_FILE_INSECURE', `${path} has mode ${(st.mode & 0o777).toString(8)}; a secret key file must be 600 (chmod 600 ${path})`, { param: 'secretKeyPath' });
  }
  return deserializePrivateKey(bytes, options);
}
