import { describe, expect, it } from 'vitest';
import { defences } from '../../src/core/defences.ts';
import { generateIdentity } from '../../src/core/identity.ts';
import { openContribution, sealContribution } from '../../src/fl/contribution.ts';
import { SIG_CONTEXT, signRequest } from '../../src/fl/identity-auth.ts';
import { PROTOCOL_VERSION, leToF64 } from '../../src/fl/protocol.ts';
import { deserializePacked, encryptVector, serializePacked } from '../../src/paillier/index.ts';
import { PACKING, authorityClient, dataClient, honestWorker, recording, rpcCode, ScriptedServer, startAuthority, usePaillierWorld } from './harness-fl.ts';

// Adversary: a malicious aggregating server in key-holder "authority" mode that wants one worker's
// update decrypted. Attack (issue 12): add its own Enc(0) to worker 1's ciphertext, so the vector
// claims 2 contributions, and ask the authority to decrypt it. Claim: the authority decrypts only
// the product it computes itself from ≥ min-contributions distinct contributions of the round,
// each signed by a roster worker, and each round once; so the padded vector, a forged or duplicated
// contribution, a contribution of another round and a second decryption of a round are all
// refused. Against the build without the floor (header count only) the padding attack yields
// worker 1's update.

describe('adversary: Enc(0) padding against the key authority\'s contribution floor', () => {
  const world = usePaillierWorld(2);

  it('padding, forged, duplicate, replayed-round and wrong-round contributions are refused; the broken build decrypts worker 1 alone', async () => {
    const authority = await startAuthority({ keyPair: world.pair, keyHolder: 'authority', secret: '', minContributions: 2, trust: world.parties.trust(world.parties.authority) });
    const rpc = authorityClient(authority.address);
    const offered = await rpc.getPublicKey({ protocolVersion: PROTOCOL_VERSION, token: '', partyId: 'server' });
    // The malicious server relays the authority's genuine signed key, so honest workers take part.
    // FedAvg weights in proportion to the example counts (113 and 114 of the 227 rows), as honest workers sign them.
    const server = new ScriptedServer(() => ({ publicKey: offered.publicKey, keySignature: offered.keySignature, keySignerId: offered.keySignerId, packing: PACKING }), (j) => Number(j.numExamples) / 227);
    const address = await server.listen();
    const trained: Float64Array[][] = [[], []];
    await Promise.all(
      [0, 1].map(async (i) =>
        honestWorker(address, { workerId: String(i + 1), client: recording(await dataClient(i + 1, 2), trained[i]!), trust: world.parties.trust(world.parties.workers[i]!), minKeyBits: 1024, expect: { strategy: 'paillier', keyHolder: 'authority' } }),
      ),
    );
    await server.close();
    const byWorker = new Map(server.joins.map((j, k) => [j.workerId, k]));
    const sent = (id: string) => {
      const r = server.results.find((x) => x.sessionId === id)!;
      if (r.body.case !== 'fit' || r.body.value.model?.kind.case !== 'encrypted') throw new Error('no encrypted result');
      return { contribution: r.body.value.model.kind.value.packed };
    };
    expect(byWorker.size).toBe(2);
    const a = sent('1');
    const b = sent('2');
    const aPacked = openContribution(a.contribution, 'a').packed;
    const length = deserializePacked(world.pair.publicKey, aPacked).length;
    const zero = await encryptVector(world.pair.publicKey, new Float64Array(length), { packing: PACKING });
    const padded = serializePacked(deserializePacked(world.pair.publicKey, aPacked).add(zero));
    const ask = (round: number, contributions: { contribution: Uint8Array }[], packed = padded) =>
      rpc.decryptAggregate({ protocolVersion: PROTOCOL_VERSION, token: '', partyId: 'server', round, packed, contributions, ...signRequest(world.parties.server, SIG_CONTEXT.authorityRequest, ['decryptAggregate', String(round)], world.parties.authority.fingerprint) });

    expect(await rpcCode(ask(1, [a]))).toBe('CIPHERML_E_CONTRIBUTION_FLOOR');
    // Enc(0) signed by the server with its own key under worker 2's id.
    const opened = openContribution(b.contribution, 'b');
    const forged = { contribution: sealContribution(generateIdentity('worker', '2'), { runId: opened.runId, round: 1, weight: opened.weight, numExamples: opened.numExamples, workerId: '2', keyFingerprint: opened.keyFingerprint }, serializePacked(zero)) };
    expect(await rpcCode(ask(1, [a, forged]))).toBe('CIPHERML_E_SIGNATURE_INVALID');
    expect(await rpcCode(ask(1, [a, a]))).toBe('CIPHERML_E_CONTRIBUTION_FLOOR');
    // Contributions signed for round 1 presented as round 2's.
    expect(await rpcCode(ask(2, [a, b]))).toBe('CIPHERML_E_CONTRIBUTION_FLOOR');
    const unsigned = rpc.decryptAggregate({ protocolVersion: PROTOCOL_VERSION, token: '', partyId: 'server', round: 1, packed: padded, contributions: [a, b] });
    expect(await rpcCode(unsigned)).toBe('CIPHERML_E_UNAUTHENTICATED');

    // The honest request: the authority's own product of both signed contributions.
    const ok = await ask(1, [a, b]);
    const sums = leToF64(ok.values, 'values');
    const w = (id: string) => Number(server.joins.find((j) => j.workerId === id)!.numExamples) / 227;
    const want = trained[0]!.flatMap((t) => [...t]).map((v, i) => w('1') * v + w('2') * trained[1]!.flatMap((t) => [...t])[i]!);
    expect(Math.max(...sums.map((v, i) => Math.abs(v - want[i]!)))).toBeLessThan(1e-4);
    expect(ok.contributions).toBe(2);
    // Each round is decrypted once: no second look at a subset of round 1.
    expect(await rpcCode(ask(1, [a, b]))).toBe('CIPHERML_E_CONTRIBUTION_FLOOR');

    // Broken build (the header's contribution count is trusted): the padded vector decrypts to worker 1's update.
    defences.contributionFloor = false;
    const leak = await ask(7, [], padded);
    const mine = Float64Array.from(trained[0]!.flatMap((t) => [...t]), (v) => w('1') * v);
    const got = leToF64(leak.values, 'values');
    expect(Math.max(...got.map((v, i) => Math.abs(v - mine[i]!)))).toBeLessThan(1e-4);
    await authority.close();
  });
});
