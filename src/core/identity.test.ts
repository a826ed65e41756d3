import { mkdtemp, chmod, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCipherMLError } from './errors.ts';
import { assertSigned, generateIdentity, identityFingerprint, loadIdentity, loadPublicIdentity, loadRoster, publicIdentity, publicIdentityToJson, Roster, saveIdentity, signMessage, verifyMessage } from './identity.ts';

describe('identity', () => {
  const alice = generateIdentity('worker', '1');
  const bob = generateIdentity('worker', '2');

  it('signs and verifies with domain separation by context', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.string({ maxLength: 20 }), (payload, ctx) => {
        const sig = signMessage(alice, `c/${ctx}`, payload);
        expect(verifyMessage(alice, `c/${ctx}`, payload, sig)).toBe(true);
        expect(verifyMessage(alice, `d/${ctx}`, payload, sig)).toBe(false);
        expect(verifyMessage(bob, `c/${ctx}`, payload, sig)).toBe(false);
      }),
      { numRuns: 30 },
    );
  });

  it('refuses a flipped byte in payload or signature', () => {
    const payload = new Uint8Array([1, 2, 3, 4]);
    const sig = signMessage(alice, 'x', payload);
    const badSig = sig.slice();
    badSig[5]! ^= 1;
    expect(verifyMessage(alice, 'x', payload, badSig)).toBe(false);
    expect(verifyMessage(alice, 'x', new Uint8Array([1, 2, 3, 5]), sig)).toBe(false);
    expect(verifyMessage(alice, 'x', payload, sig.subarray(1))).toBe(false);
    expect(() => assertSigned(alice, 'x', payload, badSig, 'the test message')).toThrow(/CIPHERML_E_SIGNATURE_INVALID: signature: the test message/);
  });

  it('fingerprints bind role, id and key', () => {
    expect(alice.fingerprint).toBe(identityFingerprint('worker', '1', alice.publicKey));
    expect(identityFingerprint('server', '1', alice.publicKey)).not.toBe(alice.fingerprint);
    expect(identityFingerprint('worker', '11', alice.publicKey)).not.toBe(alice.fingerprint);
  });

  it('saves 0600, loads, refuses insecure modes and public files as secret ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-id-'));
    const path = join(dir, 'w1.id');
    await saveIdentity(path, alice);
    const back = await loadIdentity(path);
    expect(back.fingerprint).toBe(alice.fingerprint);
    expect(verifyMessage(alice, 'x', new Uint8Array(1), signMessage(back, 'x', new Uint8Array(1)))).toBe(true);
    expect((await loadPublicIdentity(`${path}.pub`, '--trust')).fingerprint).toBe(alice.fingerprint);
    await expect(saveIdentity(path, bob)).rejects.toThrow(/CIPHERML_E_FILE_EXISTS/);
    await chmod(path, 0o644);
    await expect(loadIdentity(path)).rejects.toThrow(/CIPHERML_E_KEY_FILE_INSECURE/);
    const pubCopy = join(dir, 'copy');
    await writeFile(pubCopy, await readFile(`${path}.pub`), { mode: 0o600 });
    await expect(loadIdentity(pubCopy, '--identity')).rejects.toThrow(/--identity: .*is a public identity/);
  });

  it('roster pins keys and names both fingerprints on substitution', async () => {
    const roster = new Roster([publicIdentity(alice), publicIdentity(bob)]);
    expect(roster.require('worker', '1', 'join').fingerprint).toBe(alice.fingerprint);
    const impostor = generateIdentity('worker', '1');
    try {
      roster.check(publicIdentity(impostor), 'join of worker 1');
      expect.unreachable();
    } catch (e) {
      expect(isCipherMLError(e, 'CIPHERML_E_IDENTITY_UNKNOWN')).toBe(true);
      expect((e as Error).message).toContain(impostor.fingerprint.slice(0, 16));
      expect((e as Error).message).toContain(alice.fingerprint.slice(0, 16));
    }
    expect(() => roster.require('server', '1', 'x')).toThrow(/CIPHERML_E_IDENTITY_UNKNOWN/);
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-roster-'));
    const file = join(dir, 'roster.json');
    await writeFile(file, JSON.stringify([publicIdentityToJson(alice), { ...publicIdentityToJson(bob), fingerprint: alice.fingerprint }]));
    await expect(loadRoster(file, '--roster')).rejects.toThrow(/--roster\[1\]\.fingerprint/);
  });
});
