import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import { defences } from '../../src/core/defences.ts';
import { generateIdentity, type Identity } from '../../src/core/identity.ts';
import { authorityKeyHolder } from '../../src/fl/authority.ts';
import { contributionKeyId, sealContribution } from '../../src/fl/contribution.ts';
import { FederatedService, PushResultRequestSchema } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { SIG_CONTEXT, signRequest } from '../../src/fl/identity-auth.ts';
import { PROTOCOL_VERSION, flatten, specsOf } from '../../src/fl/protocol.ts';
import { PaillierFedAvg } from '../../src/fl/strategy.ts';
import { createRpcTransport } from '../../src/fl/transport.ts';
import { deserializePublicKey, encryptVector, serializePacked } from '../../src/paillier/index.ts';
import { MAX_MESSAGE_BYTES, PACKING, attackServer, dataClient, honestWorker, rpcCode, startAuthority, usePaillierWorld } from './harness-fl.ts';

// Adversary: a client that joined as roster worker 2 (its join is validly signed) and then sends an
// encrypted update that is not a contribution signed by worker 2: unsigned, or signed with another
// key under worker 2's id. Claim: a server in identity mode with key-holder "authority" refuses it
// on arrival (CIPHERML_E_UPDATE_UNSIGNED / CIPHERML_E_SIGNATURE_INVALID); the update never enters
// the round. Against the build without the check (defences.signedUpdatesOnArrival off) the server
// accepts it, and the forgery surfaces only when the authority recomputes the product at
// decryption time (CIPHERML_E_CONTRIBUTION_FLOOR), after every worker has trained.

describe('adversary: a worker sends an unsigned or forged update to a server in identity mode', () => {
  const world = usePaillierWorld(2);

  /** One round: honest worker 1, and a client joined as worker 2 that pushes `seal(update)`. */
  async function round(name: string, signer: Identity | null): Promise<{ push: string; error: unknown }> {
    const authority = await startAuthority({ keyPair: world.pair, keyHolder: 'authority', secret: '', minContributions: 2, trust: world.parties.trust(world.parties.authority) });
    const holder = await authorityKeyHolder(createRpcTransport({ address: authority.address, maxMessageBytes: MAX_MESSAGE_BYTES }), { keyHolder: 'authority', secret: '', trust: world.parties.trust(world.parties.server), minKeyBits: 1024 });
    const server = attackServer({ dir: world.dir, name, strategy: new PaillierFedAvg(holder, PACKING), settings: { trust: world.parties.trust(world.parties.server) } });
    const address = await server.listen();
    const running = server.run().then(() => null, (e: unknown) => e);
    const stop = new AbortController();
    const worker = honestWorker(address, { workerId: '1', client: await dataClient(1, 2), trust: world.parties.trust(world.parties.workers[0]!), minKeyBits: 1024, signal: stop.signal }).catch(() => null);

    const rpc = createClient(FederatedService, createRpcTransport({ address, maxMessageBytes: MAX_MESSAGE_BYTES }));
    const model = (await dataClient(2, 2)).getParameters();
    const joinSig = signRequest(world.parties.workers[1]!, SIG_CONTEXT.join, ['join', '2', 'evil'], world.parties.server.fingerprint);
    const joined = await rpc.join({ protocolVersion: PROTOCOL_VERSION, workerId: '2', instanceId: 'evil', token: '', numExamples: 100n, model: specsOf(model), ...joinSig });
    const pk = deserializePublicKey(joined.publicKey);
    const pushOnce = async (): Promise<string> => {
      for (;;) {
        const { task } = await rpc.pullTask({ sessionId: joined.sessionId, waitMs: 500 });
        if (task?.body.case !== 'fit') continue;
        const packed = serializePacked(await encryptVector(pk, flatten(model).map((v) => v * 0.5), { packing: PACKING }));
        const update = signer === null ? packed : sealContribution(signer, { runId: joined.runId, round: task.round, weight: 0.5, numExamples: 100, workerId: '2', keyFingerprint: contributionKeyId(pk) }, packed);
        return rpcCode(
          rpc.pushResult(create(PushResultRequestSchema, { sessionId: joined.sessionId, taskId: task.taskId, round: task.round, body: { case: 'fit', value: { model: { kind: { case: 'encrypted', value: { packed: update, specs: specsOf(model), weightTotal: 0.5 } } }, numExamples: 100n } } })),
        );
      }
    };
    const push = await pushOnce();
    const error = await running;
    stop.abort();
    await server.close();
    await worker;
    await authority.close();
    return { push, error };
  }

  it('an unsigned update is refused on arrival; the broken build accepts it and fails only at decryption', async () => {
    const refused = await round('unsigned', null);
    expect(refused.push).toBe('CIPHERML_E_UPDATE_UNSIGNED');
    expect(refused.error).not.toBeNull(); // the round lacks worker 2's update (min-fit 2)

    defences.signedUpdatesOnArrival = false;
    const broken = await round('unsigned-broken', null);
    expect(broken.push).toBe('ok');
    expect((broken.error as { code?: string }).code).toBe('CIPHERML_E_CONTRIBUTION_FLOOR');
  });

  it('an update signed under worker 2\'s id with another key is refused on arrival; the broken build accepts it', async () => {
    const impostor = generateIdentity('worker', '2');
    const refused = await round('forged', impostor);
    expect(refused.push).toBe('CIPHERML_E_SIGNATURE_INVALID');

    defences.signedUpdatesOnArrival = false;
    const broken = await round('forged-broken', impostor);
    expect(broken.push).toBe('ok');
    expect((broken.error as { code?: string }).code).toBe('CIPHERML_E_SIGNATURE_INVALID'); // from the authority, at decryption
  });
});
