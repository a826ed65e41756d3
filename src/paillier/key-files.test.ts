import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codeOf, codeOfAsync } from '../../test/helpers.ts';
import { openEnvelope, sealEnvelope } from '../core/envelope.ts';
import {
  PaillierPrivateKey,
  PaillierPublicKey,
  assertReceivedPublicKey,
  decrypt,
  decryptVector,
  deserializePacked,
  encrypt,
  encryptVector,
  generatePaillierKeyPair,
  paillierFingerprint,
  readPrivateKeyFile,
  readPublicKeyFile,
  serializePacked,
  serializePrivateKey,
  serializePublicKey,
  writeKeyPairFiles,
} from './index.ts';

describe('key files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-keys-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('writes the secret key 0600 and the public key beside it, and reads them back', async () => {
    const pair = await generatePaillierKeyPair({ bits: 1024 });
    const { secretKeyPath, publicKeyPath } = await writeKeyPairFiles(join(dir, 'k1'), pair);
    expect((await stat(secretKeyPath)).mode & 0o777).toBe(0o600);
    const pk = await readPublicKeyFile(publicKeyPath);
    const sk = await readPrivateKeyFile(secretKeyPath);
    expect(decrypt(sk, encrypt(pk, 31n))).toBe(31n);
  });

  it('never overwrites an existing key unless asked, and keeps the old one intact', async () => {
    const path = join(dir, 'k2');
    await writeKeyPairFiles(path, await generatePaillierKeyPair({ bits: 1024 }));
    const before = await readFile(path);
    expect(await codeOfAsync(async () => writeKeyPairFiles(path, await generatePaillierKeyPair({ bits: 1024 })))).toBe('CIPHERML_E_FILE_EXISTS');
    expect(Buffer.compare(await readFile(path), before)).toBe(0);
    await writeKeyPairFiles(path, await generatePaillierKeyPair({ bits: 1024 }), { overwrite: true });
    expect(Buffer.compare(await readFile(path), before)).not.toBe(0);
  });

  it('refuses a secret key file readable by others, and reports missing files', async () => {
    const path = join(dir, 'k3');
    await writeKeyPairFiles(path, await generatePaillierKeyPair({ bits: 1024 }));
    await chmod(path, 0o644);
    expect(await codeOfAsync(() => readPrivateKeyFile(path))).toBe('CIPHERML_E_KEY_FILE_INSECURE');
    expect(await codeOfAsync(() => readPublicKeyFile(join(dir, 'missing.pub')))).toBe('CIPHERML_E_IO');
    await writeFile(join(dir, 'junk.pub'), 'not a key');
    expect(await codeOfAsync(() => readPublicKeyFile(join(dir, 'junk.pub')))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
  });
});

describe('key checks (issue 12): fingerprint over n and h_s, h_s at load, received key size', () => {
  let pair: Awaited<ReturnType<typeof generatePaillierKeyPair>>;
  let dir: string;
  beforeAll(async () => {
    pair = await generatePaillierKeyPair({ bits: 1024 });
    dir = await mkdtemp(join(tmpdir(), 'cipherml-keychecks-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('the fingerprint covers h_s: the same n with another h_s is another key', () => {
    const { n, hs, nSquared } = pair.publicKey;
    expect(paillierFingerprint(n, hs)).toBe(pair.publicKey.fingerprint);
    const other = new PaillierPublicKey(n, (hs * hs) % nSquared);
    expect(other.fingerprint).not.toBe(pair.publicKey.fingerprint);
    expect(other.legacyFingerprint).toBe(pair.publicKey.legacyFingerprint);
    expect(other.equals(pair.publicKey)).toBe(false);
  });

  it('reads key and ciphertext files of cipherml ≤ 0.1 (n-only fingerprint) and re-fingerprints the key', async () => {
    const legacy = (bytes: Uint8Array, kind: 'privateKey' | 'publicKey' | 'packedVector') => {
      const env = openEnvelope(bytes, { kind, scheme: 'paillier' }, 'test');
      return sealEnvelope({ kind, scheme: 'paillier', fingerprint: pair.publicKey.legacyFingerprint, body: env.body });
    };
    const path = join(dir, 'old');
    await writeFile(path, legacy(serializePrivateKey(pair.privateKey), 'privateKey'), { mode: 0o600 });
    await writeFile(`${path}.pub`, legacy(serializePublicKey(pair.publicKey), 'publicKey'));
    const sk = await readPrivateKeyFile(path);
    expect(sk.fingerprint).toBe(pair.publicKey.fingerprint);
    expect((await readPublicKeyFile(`${path}.pub`)).fingerprint).toBe(pair.publicKey.fingerprint);
    const old = legacy(serializePacked(await encryptVector(pair.publicKey, [1.5, -2])), 'packedVector');
    expect(Array.from(await decryptVector(sk, deserializePacked(sk.publicKey, old)))).toEqual([1.5, -2]);
  });

  it('the secret-key holder refuses an h_s of order 1 or 2, or outside the n-th residues, at load', () => {
    const { p, q } = pair.privateKey;
    const { n, nSquared } = pair.publicKey;
    const p2 = p * p;
    const q2 = q * q;
    // x ≡ 1 mod p², x ≡ −1 mod q²: a square root of 1 other than ±1 (order 2).
    const crt = (a: bigint, b: bigint) => {
      const inv = modInverseBig(p2, q2);
      return (a + p2 * ((((b - a) % q2) + q2) % q2 * inv % q2)) % nSquared;
    };
    for (const hs of [nSquared - 1n, crt(1n, q2 - 1n), (1n + n) % nSquared, (pair.publicKey.hs * (1n + n)) % nSquared]) {
      expect(codeOf(() => new PaillierPrivateKey(new PaillierPublicKey(n, hs), p, q))).toBe('CIPHERML_E_KEY_INVALID');
    }
    expect(codeOf(() => new PaillierPrivateKey(pair.publicKey, p, q))).toBeUndefined();
  });

  it('a received key below 2048 bits is refused unless a lower bound is given explicitly', () => {
    expect(codeOf(() => assertReceivedPublicKey(pair.publicKey, 'publicKey'))).toBe('CIPHERML_E_KEY_TOO_SMALL');
    expect(codeOf(() => assertReceivedPublicKey(pair.publicKey, 'publicKey', 1024))).toBeUndefined();
    const order2 = new PaillierPublicKey(pair.publicKey.n, pair.publicKey.nSquared - 1n);
    expect(codeOf(() => assertReceivedPublicKey(order2, 'publicKey', 1024))).toBe('CIPHERML_E_KEY_INVALID');
  });
});

function modInverseBig(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const qt = r0 / r1;
    [r0, r1] = [r1, r0 - qt * r1];
    [s0, s1] = [s1, s0 - qt * s1];
  }
  return ((s0 % m) + m) % m;
}
