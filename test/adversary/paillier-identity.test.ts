import { describe, expect, it } from 'vitest';
import { createClient } from '@connectrpc/connect';
import { generateIdentity } from '../../src/core/identity.ts';
import { FederatedService } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { SIG_CONTEXT, signRequest, type PartyTrust } from '../../src/fl/identity-auth.ts';
import { PROTOCOL_VERSION, deriveToken } from '../../src/fl/protocol.ts';
import { PaillierFedAvg } from '../../src/fl/strategy.ts';
import { createRpcTransport } from '../../src/fl/transport.ts';
import { MAX_MESSAGE_BYTES, PACKING, attackServer, rpcCode, usePaillierWorld } from './harness-fl.ts';

// Adversary: a client that is not the worker it claims to be (an outsider, another roster worker,
// a replayer of a captured join), joining a server in identity mode over the real transport.
// Claim: the server admits a worker id only with a fresh, single-use join signed by that worker's
// pinned identity and made for this server. Against the token flow (development mode), anyone
// holding the run secret — the server operator included — mints a worker's credential and joins
// as that worker.

describe('adversary: impersonating a worker at join', () => {
  const world = usePaillierWorld(2, false);

  async function server(name: string, trust: PartyTrust | null, secret: string) {
    const s = attackServer({ dir: world.dir, name, strategy: new PaillierFedAvg({ kind: 'server', privateKey: world.pair.privateKey }, PACKING), settings: { trust, secret, maxRoundAttempts: 3 } });
    const address = await s.listen();
    return { s, rpc: createClient(FederatedService, createRpcTransport({ address, maxMessageBytes: MAX_MESSAGE_BYTES })) };
  }

  const model = [{ name: 'w', shape: [3] }];
  const base = (workerId: string, instanceId = 'i1') => ({ protocolVersion: PROTOCOL_VERSION, workerId, instanceId, token: '', numExamples: 10n, model });

  it('unsigned, outsider, wrong-signer, other-server and replayed joins are refused; the token flow admits a minted token', async () => {
    const { s, rpc } = await server('identity', world.parties.trust(world.parties.server), '');
    const w1 = world.parties.workers[0]!;
    const sign = (who = w1, id = '1', audience = world.parties.server.fingerprint, instance = 'i1') => signRequest(who, SIG_CONTEXT.join, ['join', id, instance], audience);
    expect(await rpcCode(rpc.join(base('1')))).toBe('CIPHERML_E_UNAUTHENTICATED');
    expect(await rpcCode(rpc.join({ ...base('1'), token: deriveToken('any-secret', '1') }))).toBe('CIPHERML_E_UNAUTHENTICATED');
    const outsider = generateIdentity('worker', '9');
    expect(await rpcCode(rpc.join({ ...base('9'), ...sign(outsider, '9') }))).toBe('CIPHERML_E_IDENTITY_UNKNOWN');
    expect(await rpcCode(rpc.join({ ...base('2'), ...sign(w1, '2') }))).toBe('CIPHERML_E_SIGNATURE_INVALID');
    expect(await rpcCode(rpc.join({ ...base('1'), ...sign(w1, '1', 'e'.repeat(64)) }))).toBe('CIPHERML_E_SIGNATURE_INVALID');
    const honest = { ...base('1'), ...sign() };
    expect(await rpcCode(rpc.join(honest))).toBe('ok');
    expect(await rpcCode(rpc.join(honest))).toBe('CIPHERML_E_REQUEST_STALE');
    await s.close();

    // The token flow: the run secret derives every credential, so its holder joins as worker 1.
    const dev = await server('dev', null, 'run-secret');
    expect(await rpcCode(dev.rpc.join({ ...base('1'), token: deriveToken('run-secret', '1') }))).toBe('ok');
    await dev.s.close();
  });
});
