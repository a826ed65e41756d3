import { createCipheriv, randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openSecret, sealSecret } from '../../src/gateway/secret-box.ts';
import { openSecretKey, recordFromService, sealSecretKey, serviceBytes } from '../../web/src/key-record.ts';
import { codeOfAsync } from '../helpers.ts';

/**
 * One sealed-key format for both trusted sides (src/core/secret-box.ts): the web console's
 * keystore (scrypt in JavaScript, @noble/hashes) and the CLI gateway (node:crypto's scrypt) open
 * each other's boxes, and a box in the byte layout the gateway wrote before the format moved to
 * src/core still opens. The console runs the same keystore code in the browser build
 * (test/slow/console-browser.test.ts restores the page's box with the CLI gateway).
 */
const bind = { user: 'alice', model: 'lr/1', fingerprint: 'ab'.repeat(16) };
const PASS = 'a long shared passphrase';

describe('sealed secret keys shared by the web console and the CLI gateway', () => {
  it('a box sealed in the console opens in the gateway, and one sealed by the gateway opens in the console', { timeout: 120_000 }, async () => {
    const secret = randomBytes(4096);
    const record = await sealSecretKey(bind.user, bind.model, bind.fingerprint, PASS, secret);
    expect(record.version).toBe(3);
    const fromConsole = await openSecret(serviceBytes(record), PASS, { user: bind.user, model: bind.model });
    expect(Buffer.from(fromConsole.plain).equals(secret)).toBe(true);
    expect(fromConsole.fingerprint).toBe(bind.fingerprint);

    const box = await sealSecret(secret, PASS, bind);
    const restored = recordFromService(box, bind.user, bind.model);
    expect(restored).toMatchObject({ version: 3, fingerprint: bind.fingerprint });
    expect(Buffer.from(await openSecretKey(restored, PASS)).equals(secret)).toBe(true);
    await expect(openSecretKey(restored, 'not the passphrase')).rejects.toThrow(/wrong passphrase/);
  });

  it('opens a box in the layout the gateway wrote before (node:crypto AES-GCM, tag before the ciphertext)', { timeout: 60_000 }, async () => {
    const secret = randomBytes(100);
    const bound = Buffer.from(JSON.stringify(bind), 'utf8');
    const head = Buffer.alloc(11);
    head.write('CMLSBOX2', 'latin1');
    head.writeUInt8(17, 8);
    head.writeUInt16BE(bound.length, 9);
    const aad = Buffer.concat([head, bound]);
    const salt = randomBytes(16);
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', scryptSync(PASS, salt, 32, { N: 1 << 17, r: 8, p: 1, maxmem: 256 << 20 }), nonce);
    c.setAAD(aad);
    const body = Buffer.concat([c.update(secret), c.final()]);
    const old = new Uint8Array(Buffer.concat([aad, salt, nonce, c.getAuthTag(), body]));
    const [gateway, page] = await Promise.all([openSecret(old, PASS, { user: bind.user, model: bind.model }), openSecretKey(recordFromService(old, bind.user, bind.model), PASS)]);
    expect(Buffer.from(gateway.plain).equals(secret)).toBe(true);
    expect(Buffer.from(page).equals(secret)).toBe(true);
  });

  it('a version-2 record of an earlier console (PBKDF2, 600,000 iterations) still opens in the console', async () => {
    const secret = randomBytes(64);
    const salt = randomBytes(16);
    const iv = randomBytes(12);
    const subtle = globalThis.crypto.subtle;
    const base = await subtle.importKey('raw', new TextEncoder().encode(PASS), 'PBKDF2', false, ['deriveKey']);
    const aes = await subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations: 600_000 }, base, { name: 'AES-GCM', length: 256 }, false, ['encrypt']);
    const sealed = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: new TextEncoder().encode(`cipherml-browser-key-v2|${bind.user}|${bind.model}|${bind.fingerprint}`) }, aes, secret));
    const v2 = { version: 2, ...bind, iterations: 600_000, salt: salt.toString('base64'), iv: iv.toString('base64'), sealed: Buffer.from(sealed).toString('base64'), createdAt: 0 };
    const record = recordFromService(new TextEncoder().encode(JSON.stringify(v2)), bind.user, bind.model);
    expect(Buffer.from(await openSecretKey(record, PASS)).equals(secret)).toBe(true);
    await expect(openSecretKey({ ...record, model: 'lr/2' }, PASS)).rejects.toThrow(/wrong passphrase/);
  });

  it('the console refuses, before any KDF, a box of another user or model and bytes that are neither a box nor a record', async () => {
    const box = await sealSecret(new Uint8Array(8), PASS, bind);
    expect(await codeOfAsync(async () => recordFromService(box, 'bob', bind.model))).toBe('CIPHERML_E_SECRET_BOX_BINDING');
    expect(await codeOfAsync(async () => recordFromService(box, bind.user, 'lr/2'))).toBe('CIPHERML_E_SECRET_BOX_BINDING');
    expect(() => recordFromService(new TextEncoder().encode('{"version":3}'), bind.user, bind.model)).toThrow(/not a key record of alice for lr\/1/);
    expect(() => recordFromService(randomBytes(64), bind.user, bind.model)).toThrow(/neither a secret box nor a key record/);
  });
});
