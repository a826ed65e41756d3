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
export async function writeKeyPairFiles(path: string, pair: PaillierKeyPair, options: { overwrite?: boolean; param?: string; overwriteFlag?: string } = {}): Promise<{ secretKeyPath: string; publicKeyPath: string }> {
  const publicKeyPath = `${path}.pub`;
  const named = { overwrite: options.overwrite ?? false, ...(options.param === undefined ? {} : { param: options.param }), ...(options.overwriteFlag === undefined ? {} : { overwriteFlag: options.overwriteFlag }) };
  await writeFileSafely(path, serializePrivateKey(pair.privateKey), { mode: 0o600, ...named });
  await writeFileSafely(publicKeyPath, serializePublicKey(pair.publicKey), { mode: 0o644, ...named });
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
export async function readPublicKeyFile(path: string, options: PaillierKeyOptions & KeyFileParam = {}): Promise<PaillierPublicKey> {
  return deserializePublicKey(await readFileTyped(path, options.param ?? 'publicKeyPath'), options);
}

/** The flag or config key that named the key file, for error messages (e.g. `"--key"`). */
export interface KeyFileParam {
  readonly param?: string;
}

/**
 * Reads a secret key file; refuses one that group or others can read (it would have leaked).
 *
 * @example
 * ```ts
 * const sk = await readPrivateKeyFile('keys/paillier');
 * ```
 */
export async function readPrivateKeyFile(path: string, options: PaillierKeyOptions & KeyFileParam = {}): Promise<PaillierPrivateKey> {
  const param = options.param ?? 'secretKeyPath';
  const bytes = await readFileTyped(path, param);
  // A public key given where the secret key belongs is a wrong file, not an insecure one: say so
  // instead of asking to chmod a file that is meant to be public.
  let key: PaillierPrivateKey;
  try {
    key = deserializePrivateKey(bytes, options);
  } catch (e) {
    let isPublic = false;
    try {
      deserializePublicKey(bytes, options);
      isPublic = true;
    } catch {
      // neither: report the secret-key parse error
    }
    if (isPublic) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${path} is a public key file; this needs the secret key`, {
        param,
        advice: `Pass the secret key file keygen wrote beside it (${path.endsWith('.pub') ? path.slice(0, -4) : 'the path without .pub'}), mode 600.`,
      });
    }
    throw e;
  }
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new CipherMLError('CIPHERML_E_KEY_FILE_INSECURE', `${path} holds a secret key and has mode ${(st.mode & 0o777).toString(8)}: others on this machine can read it`, {
      param,
      advice: `Run \`chmod 600 ${path}\`, and treat the key as exposed (generate a new one) if anyone else could have read it.`,
    });
  }
  return key;
}
