import { isSignedContribution, openContribution } from '../../src/fl/contribution.ts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defences } from '../../src/core/defences.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { signMessage } from '../../src/core/identity.ts';
import { PaillierPublicKey, decryptVector, deserializePacked, generatePaillierKeyPair, serializePublicKey, type PaillierKeyPair } from '../../src/paillier/index.ts';
import { SIG_CONTEXT, keyStatement } from '../../src/fl/identity-auth.ts';
import type { PushResultRequest } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { ScriptedServer, dataClient, honestWorker, makeParties, recording, resetDefences, type Parties } from './harness-fl.ts';

// Adversary: a malicious aggregating server that hands workers a Paillier key of its own choosing
// (key-holder "authority" run). Claim: an honest worker encrypts only under the key pinned by
// fingerprint or signed by the pinned key authority; it refuses any other key before sending
// anything, with a typed error naming both fingerprints/identities. Each test also runs against
// the build without the defence and shows the server then reads the worker's update.

const PACKING = { fractionalBits: 16, integerBits: 15, maxContributions: 1000 };

function fitOf(r: PushResultRequest): Uint8Array {
  if (r.body.case !== 'fit' || r.body.value.model?.kind.case !== 'encrypted') throw new Error('no encrypted fit result');
  // A signed update (identity mode) wraps the ciphertexts; the malicious server unwraps them.
  const bytes = r.body.value.model.kind.value.packed;
  return isSignedContribution(bytes) ? openContribution(bytes, 'fit').packed : bytes;
}

describe('adversary: malicious server substitutes the Paillier key', () => {
  let parties: Parties;
  let real: PaillierKeyPair;
  let evil: PaillierKeyPair;
  beforeAll(async () => {
    parties = makeParties(1);
    [real, evil] = await Promise.all([generatePaillierKeyPair({ bits: 1024 }), generatePaillierKeyPair({ bits: 1024 })]);
  });
  afterEach(() => resetDefences());
  afterAll(() => resetDefences());

  /** The authority's genuine vouching signature for `pair` (what a relaying server can copy). */
  const vouch = (pk: PaillierPublicKey) => ({ keySignature: signMessage(parties.authority, SIG_CONTEXT.keyStatement, keyStatement('authority', serializePublicKey(pk))), keySignerId: 'authority' });

  async function attack(publicKey: PaillierPublicKey, signature: { keySignature: Uint8Array; keySignerId: string }) {
    const server = new ScriptedServer(() => ({ publicKey: serializePublicKey(publicKey), packing: PACKING, ...signature }));
    const address = await server.listen();
    const trained: Float64Array[] = [];
    let error: unknown = null;
    try {
      await honestWorker(address, { workerId: '1', client: recording(await dataClient(1, 2), trained), trust: parties.trust(parties.workers[0]!), minKeyBits: 1024 });
    } catch (e) {
      error = e;
    } finally {
      await server.close();
    }
    return { server, trained, error };
  }

  it('n variant: a key of the server\'s own (new n and h_s) is refused, naming both identities; the broken build leaks the update', async () => {
    // The server signs its own key as "server": the roster pins an authority, so that is no vouch.
    const own = { keySignature: signMessage(parties.server, SIG_CONTEXT.keyStatement, keyStatement('authority', serializePublicKey(evil.publicKey))), keySignerId: 'server' };
    const refused = await attack(evil.publicKey, own);
    expect(isCipherMLError(refused.error, 'CIPHERML_E_KEY_NOT_PINNED')).toBe(true);
    const err = refused.error as { details?: Record<string, unknown> };
    expect(err.details).toMatchObject({ offered: evil.publicKey.fingerprint, pinnedSigner: parties.authority.fingerprint });
    expect(refused.server.results).toHaveLength(0);

    // Pinned by fingerprint instead of by signature: the same refusal, naming the pinned fingerprint.
    const server = new ScriptedServer(() => ({ publicKey: serializePublicKey(evil.publicKey), packing: PACKING }));
    const address = await server.listen();
    const pinned = await honestWorker(address, { workerId: '1', client: await dataClient(1, 2), trust: null, pinnedKeyFingerprint: real.publicKey.fingerprint, minKeyBits: 1024 }).catch((e: unknown) => e);
    await server.close();
    expect(isCipherMLError(pinned, 'CIPHERML_E_KEY_NOT_PINNED')).toBe(true);
    expect((pinned as { details?: Record<string, unknown> }).details).toMatchObject({ offered: evil.publicKey.fingerprint, pinned: real.publicKey.fingerprint });

    // Broken build (no pinning): the worker encrypts under the server's key and the server reads it.
    defences.keyPinning = false;
    const broken = await attack(evil.publicKey, own);
    expect(broken.error).toBeNull();
    const update = await decryptVector(evil.privateKey, deserializePacked(evil.publicKey, fitOf(broken.server.results[0]!)));
    const want = Float64Array.from(broken.trained.flatMap((t) => [...t]), (v) => v * 0.5);
    expect(update).toHaveLength(want.length);
    expect(Math.max(...update.map((v, i) => Math.abs(v - want[i]!)))).toBeLessThan(1e-4);
  });

  it('h_s variant: the authority\'s n with h_s = n² − 1 (order 2) is refused by the fingerprint and by the order check; the broken build leaks without any key', async () => {
    const bad = new PaillierPublicKey(real.publicKey.n, real.publicKey.nSquared - 1n);
    expect(bad.fingerprint).not.toBe(real.publicKey.fingerprint);
    // The server copies the authority's genuine signature of the real key onto the substituted one.
    const copied = vouch(real.publicKey);
    const both = await attack(bad, copied);
    expect(isCipherMLError(both.error, 'CIPHERML_E_KEY_INVALID')).toBe(true);
    defences.keyBaseCheck = false;
    const pinningOnly = await attack(bad, copied);
    expect(isCipherMLError(pinningOnly.error, 'CIPHERML_E_KEY_NOT_PINNED')).toBe(true);
    resetDefences();
    defences.keyPinning = false;
    const orderOnly = await attack(bad, copied);
    expect(isCipherMLError(orderOnly.error, 'CIPHERML_E_KEY_INVALID')).toBe(true);
    expect([both, pinningOnly, orderOnly].every((r) => r.server.results.length === 0)).toBe(true);

    // Broken build (neither defence): every DJN randomizer is ±1, so c = ±(1 + m·n) and the server
    // reads m with no secret key at all.
    defences.keyBaseCheck = false;
    const broken = await attack(bad, copied);
    expect(broken.error).toBeNull();
    const packed = deserializePacked(bad, fitOf(broken.server.results[0]!));
    const n = bad.n;
    const plaintexts = packed.values.map((c) => {
      const m = ((c - 1n) / n) % n;
      const neg = ((bad.nSquared - c - 1n) / n) % n;
      return (c - 1n) % n === 0n ? m : neg;
    });
    const read = packed.layout.unpack(plaintexts, packed.length, 1);
    const want = Float64Array.from(broken.trained.flatMap((t) => [...t]), (v) => v * 0.5);
    expect(read).toHaveLength(want.length);
    expect(Math.max(...read.map((v, i) => Math.abs(v - want[i]!)))).toBeLessThan(1e-4);
  });

  it('a key below 2048 bits is refused even when genuinely signed; only the explicit test-only bound admits it', async () => {
    const server = new ScriptedServer(() => ({ publicKey: serializePublicKey(real.publicKey), packing: PACKING, ...vouch(real.publicKey) }));
    const address = await server.listen();
    const small = await honestWorker(address, { workerId: '1', client: await dataClient(1, 2), trust: parties.trust(parties.workers[0]!) }).catch((e: unknown) => e);
    expect(isCipherMLError(small, 'CIPHERML_E_KEY_TOO_SMALL')).toBe(true);
    expect(server.results).toHaveLength(0);
    const allowed = await honestWorker(address, { workerId: '1', client: await dataClient(1, 2), trust: parties.trust(parties.workers[0]!), minKeyBits: 1024 });
    expect(allowed.rounds).toBe(1);
    expect(server.results).toHaveLength(1);
    await server.close();
  });
});
