import { mkdtemp, chmod, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeOf, codeOfAsync } from '../../test/helpers.ts';
import { THRESHOLD_KAT as KAT } from '../../test/fixtures/threshold.ts';
import { encrypt, serializePublicKey } from './index.ts';
import { ThresholdKeyShare, combineShares } from './threshold.ts';
import { dealFromSafePrimes } from './threshold-dealer.ts';
import {
  deserializeDecryptionShares,
  deserializeThresholdKeyShare,
  deserializeThresholdPublicKey,
  readThresholdKeyShareFile,
  readThresholdPublicKeyFile,
  serializeDecryptionShares,
  serializeThresholdKeyShare,
  serializeThresholdPublicKey,
  writeThresholdKeyFiles,
} from './threshold-serialize.ts';

describe('threshold Paillier serialization', () => {
  const dealt = dealFromSafePrimes(KAT.p, KAT.q, { holders: 3, threshold: 2 });
  const other = dealFromSafePrimes(KAT.p, KAT.q, { holders: 3, threshold: 2 });
  const pk = dealt.publicKey;

  it('round-trips the public key, the shares and decryption shares', () => {
    const pk2 = deserializeThresholdPublicKey(serializeThresholdPublicKey(pk));
    expect(pk2.fingerprint).toBe(pk.fingerprint);
    expect(pk2.paillier.hs).toBe(pk.paillier.hs);
    const s2 = deserializeThresholdKeyShare(serializeThresholdKeyShare(dealt.shares[1]!), { expected: pk });
    expect(s2.id).toBe(2);
    const c = encrypt(pk.paillier, 77n).value;
    const bytes = serializeDecryptionShares(pk, [s2.decryptShare(c), s2.decryptShare(c)]);
    const { id, shares } = deserializeDecryptionShares(pk2, bytes, 2);
    expect(id).toBe(2);
    expect(combineShares(pk2, c, [shares[0]!, dealt.shares[0]!.decryptShare(c)])).toBe(77n);
  });

  it('refuses a wrong key, wrong kind, wrong count, tampering and truncation with typed errors', () => {
    const pub = serializeThresholdPublicKey(pk);
    const share = serializeThresholdKeyShare(dealt.shares[0]!);
    expect(codeOf(() => deserializeThresholdKeyShare(share, { expected: other.publicKey }))).toBe('CIPHERML_E_KEY_MISMATCH');
    expect(codeOf(() => deserializeThresholdPublicKey(share))).toBe('CIPHERML_E_FORMAT_UNSUPPORTED');
    expect(codeOf(() => deserializeThresholdPublicKey(serializePublicKey(pk.paillier)))).toBe('CIPHERML_E_FORMAT_UNSUPPORTED');
    expect(codeOf(() => deserializeThresholdPublicKey(pub.subarray(0, pub.length - 9)))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    const flipped = Uint8Array.from(pub);
    flipped[60] = flipped[60]! ^ 1;
    expect(codeOf(() => deserializeThresholdPublicKey(flipped))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    const c = encrypt(pk.paillier, 1n).value;
    const ds = serializeDecryptionShares(pk, [dealt.shares[0]!.decryptShare(c)]);
    expect(codeOf(() => deserializeDecryptionShares(pk, ds, 2))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    expect(codeOf(() => deserializeDecryptionShares(other.publicKey, ds, 1))).toBe('CIPHERML_E_KEY_MISMATCH');
  });

  it('a share whose secret is altered, or another key\'s share, is refused', () => {
    expect(codeOf(() => new ThresholdKeyShare(pk, 3, dealt.shares[2]!.exportSecret() + 1n))).toBe('CIPHERML_E_KEY_MISMATCH');
    expect(codeOf(() => new ThresholdKeyShare(pk, 3, dealt.shares[1]!.exportSecret()))).toBe('CIPHERML_E_KEY_MISMATCH');
    expect(codeOf(() => deserializeThresholdKeyShare(serializeThresholdKeyShare(other.shares[2]!), { expected: pk }))).toBe('CIPHERML_E_KEY_MISMATCH');
  });

  it('writes share files 0600 and the public file 0644, refuses to overwrite, pins the fingerprint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-threshold-'));
    const paths = await writeThresholdKeyFiles(dir, dealt);
    expect((await stat(paths.sharePaths[0]!)).mode & 0o777).toBe(0o600);
    expect((await stat(paths.publicKeyPath)).mode & 0o777).toBe(0o644);
    expect(await codeOfAsync(() => writeThresholdKeyFiles(dir, other))).toBe('CIPHERML_E_FILE_EXISTS');
    expect((await readThresholdPublicKeyFile(paths.publicKeyPath, { pin: pk.fingerprint })).fingerprint).toBe(pk.fingerprint);
    expect(await codeOfAsync(() => readThresholdPublicKeyFile(paths.publicKeyPath, { pin: other.publicKey.fingerprint }))).toBe('CIPHERML_E_KEY_MISMATCH');
    expect((await readThresholdKeyShareFile(paths.sharePaths[1]!, { expected: pk })).id).toBe(2);
    await chmod(paths.sharePaths[1]!, 0o644);
    expect(await codeOfAsync(() => readThresholdKeyShareFile(paths.sharePaths[1]!))).toBe('CIPHERML_E_KEY_FILE_INSECURE');
    const copy = join(dir, 'copy.share');
    await writeFile(copy, await readFile(paths.publicKeyPath), { mode: 0o600 });
    expect(await codeOfAsync(() => readThresholdKeyShareFile(copy))).toBe('CIPHERML_E_FORMAT_UNSUPPORTED');
  });
});
