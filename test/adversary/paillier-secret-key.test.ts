import { describe, expect, it } from 'vitest';
import { defences } from '../../src/core/defences.ts';
import { generateIdentity, signMessage } from '../../src/core/identity.ts';
import { SIG_CONTEXT, encodeFields, signRequest } from '../../src/fl/identity-auth.ts';
import { PROTOCOL_VERSION, deriveToken } from '../../src/fl/protocol.ts';
import { deserializePrivateKey } from '../../src/paillier/index.ts';
import { authorityClient, rpcCode, startAuthority, usePaillierWorld } from './harness-fl.ts';

// Adversary: a malicious aggregating server (and an anonymous caller) asking the key authority for
// the Paillier secret key in key-holder "clients" mode. Claim: the authority hands the key pair only
// to a roster worker whose fresh, single-use request verifies under that worker's own identity; the
// server cannot mint a worker credential (it holds no worker's signing key), even when it knows the
// run secret the old token flow derived every credential from. Against the build without the
// defence (signatures off: the token flow), the server's minted token and the anonymous call get
// the key.

describe('adversary: secret-key requests at the key authority (key-holder "clients")', () => {
  const world = usePaillierWorld(2);

  it('the server minting worker 1\'s token from the run secret, or signing as itself, gets nothing; the broken build hands it the key', async () => {
    const runSecret = 'run-secret-known-to-the-server';
    const authority = await startAuthority({ keyPair: world.pair, keyHolder: 'clients', secret: runSecret, minContributions: 2, trust: world.parties.trust(world.parties.authority) });
    const rpc = authorityClient(authority.address);
    const minted = { protocolVersion: PROTOCOL_VERSION, token: deriveToken(runSecret, '1'), workerId: '1' };
    expect(await rpcCode(rpc.getKeyPair(minted))).toBe('CIPHERML_E_UNAUTHENTICATED');
    // Signed with the server's own identity while claiming to be worker 1: the pinned key of worker 1 does not verify it.
    const asServer = signRequest(world.parties.server, SIG_CONTEXT.authorityRequest, ['getKeyPair', '1'], world.parties.authority.fingerprint);
    expect(await rpcCode(rpc.getKeyPair({ ...minted, ...asServer }))).toBe('CIPHERML_E_SIGNATURE_INVALID');
    expect(await rpcCode(rpc.getKeyPair({ ...minted, workerId: 'server', ...asServer }))).toBe('CIPHERML_E_FORBIDDEN');
    // An identity outside the roster.
    const stranger = generateIdentity('worker', '9');
    expect(await rpcCode(rpc.getKeyPair({ protocolVersion: PROTOCOL_VERSION, token: '', workerId: '9', ...signRequest(stranger, SIG_CONTEXT.authorityRequest, ['getKeyPair', '9'], world.parties.authority.fingerprint) }))).toBe('CIPHERML_E_IDENTITY_UNKNOWN');
    expect(authority.events.filter((e) => e.startsWith('key-world.pair'))).toHaveLength(0);

    // The honest worker 1 gets it; replaying its captured request does not.
    const honest = { protocolVersion: PROTOCOL_VERSION, token: '', workerId: '1', ...signRequest(world.parties.workers[0]!, SIG_CONTEXT.authorityRequest, ['getKeyPair', '1'], world.parties.authority.fingerprint) };
    const kp = await rpc.getKeyPair(honest);
    expect(deserializePrivateKey(kp.privateKey).publicKey.equals(world.pair.publicKey)).toBe(true);
    expect(await rpcCode(rpc.getKeyPair(honest))).toBe('CIPHERML_E_REQUEST_STALE');
    // A request made for another authority (audience) does not verify here.
    const elsewhere = { protocolVersion: PROTOCOL_VERSION, token: '', workerId: '2', ...signRequest(world.parties.workers[1]!, SIG_CONTEXT.authorityRequest, ['getKeyPair', '2'], 'f'.repeat(64)) };
    expect(await rpcCode(rpc.getKeyPair(elsewhere))).toBe('CIPHERML_E_SIGNATURE_INVALID');
    // A stale request (issued 10 minutes ago) does not either, though correctly signed.
    const issuedAtMs = BigInt(Date.now() - 10 * 60_000);
    const nonce = new Uint8Array(16).fill(7);
    const stale = signMessage(world.parties.workers[1]!, SIG_CONTEXT.authorityRequest, encodeFields(['getKeyPair', '2', world.parties.authority.fingerprint, issuedAtMs, nonce]));
    expect(await rpcCode(rpc.getKeyPair({ protocolVersion: PROTOCOL_VERSION, token: '', workerId: '2', signature: stale, issuedAtMs, nonce }))).toBe('CIPHERML_E_REQUEST_STALE');

    // Broken build (no signature check: the token flow): the server's minted token gets the secret key.
    defences.keyRequestSignatures = false;
    const stolen = await rpc.getKeyPair(minted);
    const sk = deserializePrivateKey(stolen.privateKey);
    expect(sk.p * sk.q).toBe(world.pair.publicKey.n);
    await authority.close();
  });

  it('an anonymous caller gets nothing, in identity mode and in the development mode without a token; the broken build hands it the key', async () => {
    const identityMode = await startAuthority({ keyPair: world.pair, keyHolder: 'clients', secret: '', minContributions: 2, trust: world.parties.trust(world.parties.authority) });
    const devMode = await startAuthority({ keyPair: world.pair, keyHolder: 'clients', secret: '', minContributions: 2, trust: null });
    const anonymous = { protocolVersion: PROTOCOL_VERSION, token: '', workerId: '1' };
    expect(await rpcCode(authorityClient(identityMode.address).getKeyPair(anonymous))).toBe('CIPHERML_E_UNAUTHENTICATED');
    expect(await rpcCode(authorityClient(devMode.address).getKeyPair(anonymous))).toBe('CIPHERML_E_UNAUTHENTICATED');
    defences.keyRequestSignatures = false;
    const leaked = await authorityClient(identityMode.address).getKeyPair(anonymous);
    expect(deserializePrivateKey(leaked.privateKey).publicKey.equals(world.pair.publicKey)).toBe(true);
    await Promise.all([identityMode.close(), devMode.close()]);
  });

  it('key-holder "authority": the secret key never leaves, whoever asks', async () => {
    const authority = await startAuthority({ keyPair: world.pair, keyHolder: 'authority', secret: '', minContributions: 2, trust: world.parties.trust(world.parties.authority) });
    const signed = { protocolVersion: PROTOCOL_VERSION, token: '', workerId: '1', ...signRequest(world.parties.workers[0]!, SIG_CONTEXT.authorityRequest, ['getKeyPair', '1'], world.parties.authority.fingerprint) };
    expect(await rpcCode(authorityClient(authority.address).getKeyPair(signed))).toBe('CIPHERML_E_FORBIDDEN');
    await authority.close();
  });
});
