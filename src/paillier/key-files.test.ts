import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codeOfAsync } from '../../test/helpers.ts';
import { decrypt, encrypt, generatePaillierKeyPair, readPrivateKeyFile, readPublicKeyFile, writeKeyPairFiles } from './index.ts';

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
