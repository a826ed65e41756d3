import { create } from '@bufbuild/protobuf';
import { afterEach, describe, expect, it } from 'vitest';
import { defences, resetDefences } from '../../src/core/defences.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { dealFromSafePrimes, type DealtThresholdKey } from '../../src/paillier/threshold-dealer.ts';
import { FitResultSchema, TensorSpecSchema, type TensorSpec } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { ThresholdKeyHolderService } from '../../src/fl/gen/cipherml/fl/v1/threshold_pb.ts';
import { flatten } from '../../src/fl/protocol.ts';
import type { FitOutcome } from '../../src/fl/strategy.ts';
import { ThresholdFedAvg, type ThresholdRoundReport } from '../../src/fl/threshold-strategy.ts';
import { createRpcTransport, startRpcServer, type RpcServer } from '../../src/fl/transport.ts';
import { THRESHOLD_KAT } from '../fixtures/threshold.ts';
import { PACKING, contribution, thresholdWorld, type ThresholdWorld } from './threshold-harness.ts';

// Malicious and faulty key holders against the aggregating server's combiner, over real gRPC on
// loopback. A 2-of-4 key (t = 1): holder 1 answers with wrong decryption shares, holder 2 accepts
// the request and never answers, holders 3 and 4 are honest — exactly t + 1 of them. The round
// must decrypt to the true weighted mean, with holder 1 named by id as the cheater and holder 2
// reported as not answering. The same round against the broken build (share-proof verification
// off: defences.thresholdShareProofs) combines the cheater's shares: the aggregate is wrong (or
// refused as out of range) and no holder is named, so the test can fail.

const RUN = 'run-faulty-holders';
const SPECS: TensorSpec[] = [create(TensorSpecSchema, { name: 'w', shape: [4] })];
const UPDATES = [
  [0.5, -1.25, 3.75, 42],
  [1, 2, 3, 4],
  [-7.5, 0.125, 9, -3],
];
const EXAMPLES = [100, 300, 200];
const TOTAL = EXAMPLES.reduce((a, b) => a + b, 0);
const MEAN = UPDATES[0]!.map((_, j) => UPDATES.reduce((s, u, k) => s + u[j]! * EXAMPLES[k]!, 0) / TOTAL);

const dealt: DealtThresholdKey = dealFromSafePrimes(THRESHOLD_KAT.p, THRESHOLD_KAT.q, { holders: 4, threshold: 2 });
let world: ThresholdWorld | null = null;
let silent: RpcServer | null = null;
afterEach(async () => {
  resetDefences();
  await world?.close();
  await silent?.close();
  world = silent = null;
});

/** One round as the server runs it: each worker's signed Enc(w·θ) checked on arrival, then aggregated by the holders. */
async function round(w: ThresholdWorld, holderAddresses: readonly string[]): Promise<{ mean: number[] | null; error: unknown; report: ThresholdRoundReport | null }> {
  let report: ThresholdRoundReport | null = null;
  const strategy = new ThresholdFedAvg({
    publicKey: w.dealt.publicKey,
    packing: PACKING,
    holders: holderAddresses.map((address, i) => ({ name: `holder ${i + 1}`, transport: createRpcTransport({ address, maxMessageBytes: 16 << 20 }) })),
    roster: w.roster,
    // The silent holder costs the round this wait; honest holders on the BigInt path under load took > 1.5 s.
    holderTimeoutMs: 6000,
    onRound: (_, r) => (report = r),
  });
  const outcomes: FitOutcome[] = w.workers.map((id, k) => {
    const weight = EXAMPLES[k]! / TOTAL;
    const packed = contribution(w, id, RUN, 1, UPDATES[k]!.map((x) => x * weight), weight, EXAMPLES[k]!);
    const result = create(FitResultSchema, { model: { kind: { case: 'encrypted', value: { packed, specs: SPECS } } }, numExamples: BigInt(EXAMPLES[k]!) });
    return { workerId: id.id, numExamples: EXAMPLES[k]!, weight, decoded: strategy.checkFitResult(result, SPECS, `result from ${id.id}`), metrics: {} };
  });
  try {
    const model = await strategy.aggregateFit(1, outcomes, SPECS);
    return { mean: model.kind === 'plain' ? [...flatten(model.tensors)] : null, error: null, report };
  } catch (e) {
    return { mean: null, error: e, report };
  }
}

/** Holders 1 (cheating), 3 and 4 on their own sockets, and a silent stand-in for holder 2. */
async function faultyHolders(): Promise<string[]> {
  world = await thresholdWorld({ dealt, hooks: [{ corruptShares: true }, undefined, undefined, undefined] });
  silent = await startRpcServer({
    address: '127.0.0.1:0',
    maxMessageBytes: 1 << 20,
    routes: (r) => r.service(ThresholdKeyHolderService, { holderInfo: () => ({}), decryptContributions: () => new Promise<never>(() => undefined) }),
  });
  const h = world.holders.map((x) => x.server.address);
  return [h[0]!, silent.address, h[2]!, h[3]!];
}

describe('threshold combiner against a cheating and a silent key holder (real gRPC)', () => {
  it('decrypts with the t + 1 honest holders, names the cheater by id and the silent holder as failed', async () => {
    const addresses = await faultyHolders();
    const honest = await round(world!, addresses);
    expect(honest.error).toBeNull();
    expect(honest.mean!.every((v, j) => Math.abs(v - MEAN[j]!) < 1e-4)).toBe(true);
    expect(honest.report).toMatchObject({ used: [3, 4], rejected: [1] });
    expect(honest.report!.failed.map((f) => f.holder)).toEqual(['holder 2']);
  });

  it('with only the cheater and one honest holder answering, the round fails naming holder 1', async () => {
    const addresses = await faultyHolders();
    const r = await round(world!, [addresses[0]!, addresses[1]!, addresses[2]!]);
    expect(isCipherMLError(r.error, 'CIPHERML_E_THRESHOLD_SHARE_INVALID')).toBe(true);
    expect((r.error as { details?: Record<string, unknown> }).details?.['holders']).toEqual([1]);
  });

  it('broken build (share proofs not verified): the cheater is combined, the aggregate is wrong or refused, and nobody is named', async () => {
    const addresses = await faultyHolders();
    defences.thresholdShareProofs = false;
    const broken = await round(world!, addresses);
    resetDefences();
    if (broken.error === null) {
      expect(broken.report).toMatchObject({ used: [1, 3], rejected: [] });
      expect(Math.max(...broken.mean!.map((v, j) => Math.abs(v - MEAN[j]!)))).toBeGreaterThan(1);
    } else {
      expect(isCipherMLError(broken.error, 'CIPHERML_E_AGGREGATE_OUT_OF_RANGE')).toBe(true);
      expect(JSON.stringify((broken.error as { details?: unknown }).details ?? {})).not.toContain('"holders"');
    }
  });
});
