import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import { defences } from '../../src/core/defences.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { signMessage } from '../../src/core/identity.ts';
import { FederatedService, PushResultRequestSchema } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { SIG_CONTEXT, keyStatement, signRequest } from '../../src/fl/identity-auth.ts';
import { contributionKeyId, sealContribution } from '../../src/fl/contribution.ts';
import { PROTOCOL_VERSION, flatten, specsOf } from '../../src/fl/protocol.ts';
import { type RunSummary } from '../../src/fl/server.ts';
import { PaillierFedAvg } from '../../src/fl/strategy.ts';
import { createRpcTransport } from '../../src/fl/transport.ts';
import { PackedCiphertext, PackingLayout, deserializePublicKey, serializePacked, serializePublicKey } from '../../src/paillier/index.ts';
import { MAX_MESSAGE_BYTES, PACKING, attackServer, dataClient, honestWorker, usePaillierWorld } from './harness-fl.ts';

// Adversary: a dishonest client (a roster worker) that writes an out-of-range value into a packed
// Paillier slot of its encrypted update, to carry into its neighbour slot or past the plaintext's
// last slot. Claim: the decrypted aggregate's slots are checked for range (each slot of a sum of C
// contributions within [C, C·(2^valueBits − 1)], bits above the last slot zero) and a violation is
// a typed AGGREGATE_OUT_OF_RANGE naming the round; the round is never applied. Against the build
// without the check the run finishes with a silently wrong model. What the check cannot see: a
// crafted value whose slot sum stays in range (bias; docs/fl.md).

describe('adversary: a dishonest client overflows a packed slot', () => {
  const world = usePaillierWorld(2, false);

  /** One round with honest worker 1 and dishonest worker 2, who sets raw slot `slot` of its update to `raw(layout)`. */
  async function round(name: string, slot: number, raw: (l: PackingLayout) => bigint): Promise<{ summary: RunSummary | null; error: unknown; honest: Float64Array }> {
    const vouch = { keySignature: signMessage(world.parties.server, SIG_CONTEXT.keyStatement, keyStatement('server', serializePublicKey(world.pair.publicKey))), keySignerId: 'server' };
    const server = attackServer({ dir: world.dir, name, strategy: new PaillierFedAvg({ kind: 'server', privateKey: world.pair.privateKey, vouch }, PACKING), settings: { trust: world.parties.trust(world.parties.server) } });
    const address = await server.listen();
    const running = server.run().then((s) => ({ summary: s, error: null as unknown }), (e: unknown) => ({ summary: null, error: e }));
    const stop = new AbortController();
    const honestParams: Float64Array[] = [];
    const honestClient = await dataClient(1, 2);
    const worker = honestWorker(address, {
      workerId: '1',
      client: { ...honestClient, fit: async (p, c) => { const out = await honestClient.fit(p, c); honestParams.push(flatten(out.parameters)); return out; } },
      trust: world.parties.trust(world.parties.workers[0]!),
      minKeyBits: 1024,
      signal: stop.signal,
    }).catch(() => null);

    // The dishonest client speaks the wire protocol itself.
    const rpc = createClient(FederatedService, createRpcTransport({ address, maxMessageBytes: MAX_MESSAGE_BYTES }));
    const model = (await dataClient(2, 2)).getParameters();
    const joinSig = signRequest(world.parties.workers[1]!, SIG_CONTEXT.join, ['join', '2', 'evil'], world.parties.server.fingerprint);
    const joined = await rpc.join({ protocolVersion: PROTOCOL_VERSION, workerId: '2', instanceId: 'evil', token: '', numExamples: 100n, model: specsOf(model), ...joinSig });
    const pk = deserializePublicKey(joined.publicKey);
    const layout = PackingLayout.forKey(pk, PACKING);
    for (;;) {
      const { task } = await rpc.pullTask({ sessionId: joined.sessionId, waitMs: 500 });
      if (task?.body.case !== 'fit') continue;
      const length = flatten(model).length;
      const plaintexts = layout.pack(new Float64Array(length));
      const shift = BigInt((slot % layout.slotsPerCiphertext) * layout.slotBits);
      const mask = ((1n << BigInt(layout.slotBits)) - 1n) << shift;
      const c = Math.floor(slot / layout.slotsPerCiphertext);
      plaintexts[c] = (plaintexts[c]! & ~mask) | (raw(layout) << shift);
      const packed = serializePacked(new PackedCiphertext(pk, layout, length, 1, plaintexts.map((p) => pk.encryptRaw(p)), true));
      // Signed like an honest worker's update: the server cannot tell it apart before decryption.
      const signed = sealContribution(world.parties.workers[1]!, { runId: joined.runId, round: task.round, weight: 0.5, numExamples: 100, workerId: '2', keyFingerprint: contributionKeyId(pk) }, packed);
      await rpc.pushResult(
        create(PushResultRequestSchema, { sessionId: joined.sessionId, taskId: task.taskId, round: task.round, body: { case: 'fit', value: { model: { kind: { case: 'encrypted', value: { packed: signed, specs: specsOf(model), weightTotal: 0.5 } } }, numExamples: 100n } } }),
      );
      break;
    }
    const outcome = await running;
    stop.abort();
    await server.close();
    await worker;
    return { ...outcome, honest: honestParams[0]! };
  }

  it('a carry out of the last slot of a plaintext: typed error naming the round; the broken build applies a wrong model', async () => {
    const top = (l: PackingLayout) => (1n << BigInt(l.slotBits)) - 1n;
    const slot = 23; // the last slot of ciphertext 0 (24 slots of 42 bits per 1024-bit plaintext)
    const caught = await round('carry', slot, top);
    expect(isCipherMLError(caught.error, 'CIPHERML_E_AGGREGATE_OUT_OF_RANGE')).toBe(true);
    expect((caught.error as Error).message).toContain('round 1');
    expect((caught.error as { details?: Record<string, unknown> }).details).toMatchObject({ round: 1 });

    defences.slotRangeCheck = false;
    const broken = await round('carry-broken', slot, top);
    expect(broken.error).toBeNull();
    const model = flatten(broken.summary!.model!);
    // The honest half of the mean is 0.5·θ₁; the dishonest worker claimed zeros, yet slot 23 is off by ~2^14.
    expect(Math.abs(model[slot]! - (0.5 * broken.honest[slot]!) / 1)).toBeGreaterThan(1000);
  });

  it('a slot sum above C·(2^valueBits − 1) without a carry is refused too', async () => {
    const big = (l: PackingLayout) => 2n * ((1n << BigInt(l.valueBits)) - 1n);
    const caught = await round('big', 3, big);
    expect(isCipherMLError(caught.error, 'CIPHERML_E_AGGREGATE_OUT_OF_RANGE')).toBe(true);
    expect((caught.error as Error).message).toMatch(/round 1: slot 3 /);
    defences.slotRangeCheck = false;
    const broken = await round('big-broken', 3, big);
    expect(broken.error).toBeNull();
    expect(Math.abs(flatten(broken.summary!.model!)[3]! - 0.5 * broken.honest[3]!)).toBeGreaterThan(1000);
  });
});
