import { afterEach, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/core/identity.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { defences, resetDefences } from '../../src/core/defences.ts';
import { PackedCiphertext, deserializePacked, encryptPacked, serializePacked } from '../../src/paillier/index.ts';
import type { DecryptionShare } from '../../src/paillier/threshold.ts';
import { combinePacked } from '../../src/paillier/threshold-vector.ts';
import { openContribution, sealContribution } from '../../src/fl/contribution.ts';
import type { HolderTestHooks } from '../../src/fl/threshold-holder.ts';
import { PACKING, ask, contribution, thresholdWorld, type ThresholdWorld } from './threshold-harness.ts';

// A malicious aggregating server against honest threshold key holders, over real gRPC on
// loopback. Each attack is refused by the holders; each is run again against holders built with
// the one check that stops it disabled (internal test hook), where the server does recover a
// single worker's update: so each test can fail.

const RUN = 'run-adversary';
const A = [0.5, -1.25, 3.75, 42];
const B = [1, 2, 3, 4];
const C = [-7.5, 0.125, 9, -3];

let world: ThresholdWorld | null = null;
afterEach(async () => {
  await world?.close();
  world = null;
});

/** The product of the contributions, as the server computes it. */
function productOf(w: ThresholdWorld, cs: readonly Uint8Array[]): PackedCiphertext {
  return PackedCiphertext.sum(cs.map((c, i) => deserializePacked(w.dealt.publicKey.paillier, openContribution(c, `c${i}`).packed)));
}

/**
 * The attack as the malicious server runs it: ask holders 1 and 2 to decrypt `cs` for `round`,
 * and combine their shares. Returns the decrypted slot sums, or the holders' refusal codes.
 */
async function attack(w: ThresholdWorld, round: number, cs: readonly Uint8Array[]): Promise<number[] | string[]> {
  const product = productOf(w, cs);
  const answers = await Promise.all([0, 1].map((i) => ask(w, i, RUN, round, cs, product.values.length)));
  const codes = answers.filter((a): a is string => typeof a === 'string');
  if (codes.length > 0) return codes;
  return [...combinePacked(w.dealt.publicKey, product, answers as DecryptionShare[][]).values];
}

async function both(hooks: HolderTestHooks, run: (w: ThresholdWorld) => Promise<void>): Promise<void> {
  world = await thresholdWorld();
  await run(world);
  await world.close();
  world = await thresholdWorld({ hooks: [hooks, hooks, hooks] });
  await run(world);
}

describe('threshold key holders against a malicious server (real gRPC)', () => {
  it('refuse to decrypt one worker\'s update on its own (and the broken build decrypts it)', async () => {
    const results: (number[] | string[])[] = [];
    await both({ skipMinContributions: true }, async (w) => {
      results.push(await attack(w, 1, [contribution(w, w.workers[0]!, RUN, 1, A)]));
    });
    expect(results[0]).toEqual(['CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED', 'CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED']);
    expect(results[1]).toEqual(A);
  });

  it('refuse Enc(0) padding with an unsigned contribution (and the broken build decrypts the victim)', async () => {
    const results: (number[] | string[])[] = [];
    await both({ skipSignatures: true }, async (w) => {
      const victim = contribution(w, w.workers[0]!, RUN, 1, A);
      const zero = contribution(w, w.workers[1]!, RUN, 1, [0, 0, 0, 0]);
      const unsigned = Uint8Array.from(zero);
      unsigned.fill(0, unsigned.length - 64); // signature bytes zeroed
      results.push(await attack(w, 1, [victim, unsigned]));
    });
    expect(results[0]).toEqual(['CIPHERML_E_SIGNATURE_INVALID', 'CIPHERML_E_SIGNATURE_INVALID']);
    expect(results[1]).toEqual(A);
  });

  it('refuse Enc(0) padding re-signed by the server under a roster worker\'s id or its own (and the broken build decrypts the victim)', async () => {
    const results: (number[] | string[])[] = [];
    const serverAsWorker2 = generateIdentity('worker', '2'); // the server's own key, claiming worker 2's id
    await both({ skipSignatures: true }, async (w) => {
      const victim = contribution(w, w.workers[0]!, RUN, 1, A);
      const zeroPacked = serializePacked(encryptPacked(w.dealt.publicKey.paillier, [0, 0, 0, 0], { packing: PACKING }));
      const resigned = sealContribution(serverAsWorker2, { runId: RUN, round: 1, weight: 0.25, numExamples: 100, workerId: '2', keyFingerprint: w.dealt.publicKey.fingerprint }, zeroPacked);
      results.push(await attack(w, 1, [victim, resigned]));
      const outsider = sealContribution(generateIdentity('worker', 'server-sybil'), { runId: RUN, round: 2, weight: 0.25, numExamples: 100, workerId: 'server-sybil', keyFingerprint: w.dealt.publicKey.fingerprint }, zeroPacked);
      results.push(await attack(w, 2, [contribution(w, w.workers[0]!, RUN, 2, A), outsider]));
    });
    expect(results[0]).toEqual(['CIPHERML_E_SIGNATURE_INVALID', 'CIPHERML_E_SIGNATURE_INVALID']);
    expect(results[1]).toEqual(['CIPHERML_E_IDENTITY_UNKNOWN', 'CIPHERML_E_IDENTITY_UNKNOWN']);
    expect(results[2]).toEqual(A);
    expect(results[3]).toEqual(A);
  });

  it('refuse the same worker\'s contribution twice (and the broken build yields 2× the victim)', async () => {
    const results: (number[] | string[])[] = [];
    await both({ skipDistinctWorkers: true }, async (w) => {
      const victim = contribution(w, w.workers[0]!, RUN, 1, A);
      results.push(await attack(w, 1, [victim, victim]));
    });
    expect(results[0]).toEqual(['CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED', 'CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED']);
    expect(results[1]).toEqual(A.map((x) => 2 * x));
  });

  it('decrypt one aggregate per round, so two subsets cannot be differenced (and the broken build leaks C)', async () => {
    const leaked: number[][] = [];
    const codes: (number[] | string[])[] = [];
    await both({ skipRoundCheck: true }, async (w) => {
      const [a, b, c] = [A, B, C].map((v, i) => contribution(w, w.workers[i]!, RUN, 1, v));
      const first = (await attack(w, 1, [a!, b!])) as number[];
      expect(first).toEqual(A.map((x, i) => x + B[i]!));
      const second = await attack(w, 1, [a!, b!, c!]);
      codes.push(second);
      if (typeof second[0] === 'number') leaked.push((second as number[]).map((x, i) => x - first[i]!));
    });
    expect(codes[0]).toEqual(['CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED', 'CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED']);
    expect(leaked).toEqual([C]);
  });

  it('refuse contributions replayed from an earlier round (and the broken build leaks C by differencing)', async () => {
    const leaked: number[][] = [];
    const codes: (number[] | string[])[] = [];
    await both({ skipBinding: true }, async (w) => {
      const [a1, b1] = [A, B].map((v, i) => contribution(w, w.workers[i]!, RUN, 1, v));
      const first = (await attack(w, 1, [a1!, b1!])) as number[];
      const c2 = contribution(w, w.workers[2]!, RUN, 2, C);
      const second = await attack(w, 2, [a1!, b1!, c2]);
      codes.push(second);
      if (typeof second[0] === 'number') leaked.push((second as number[]).map((x, i) => x - first[i]!));
    });
    expect(codes[0]).toEqual(['CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED', 'CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED']);
    expect(leaked).toEqual([C]);
  });

  it('refuse FedAvg weights not proportional to example counts (and the broken build yields the victim alone)', async () => {
    const results: (number[] | string[])[] = [];
    await both({ skipWeightCheck: true }, async (w) => {
      // The server told the victim weight 1 and the other worker weight 1e-9: Enc(1e-9·B) rounds to Enc(0).
      const victim = contribution(w, w.workers[0]!, RUN, 1, A, 1, 100);
      const drowned = contribution(w, w.workers[1]!, RUN, 1, B.map((x) => x * 1e-9), 1e-9, 100);
      results.push(await attack(w, 1, [victim, drowned]));
    });
    expect(results[0]).toEqual(['CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED', 'CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED']);
    expect(results[1]).toEqual(A);
  });

  it('a cheating holder\'s wrong shares are detected and named; combining unverified shares gives a wrong sum', async () => {
    world = await thresholdWorld({ hooks: [{ corruptShares: true }, undefined, undefined] });
    const w = world;
    const cs = [contribution(w, w.workers[0]!, RUN, 1, A), contribution(w, w.workers[1]!, RUN, 1, B)];
    const product = productOf(w, cs);
    const shares = await Promise.all([0, 1, 2].map((i) => ask(w, i, RUN, 1, cs, product.values.length)));
    const [s1, s2, s3] = shares as DecryptionShare[][];
    const sum = A.map((x, i) => x + B[i]!);
    const r = combinePacked(w.dealt.publicKey, product, [s1!, s2!, s3!]);
    expect(r.rejected).toEqual([1]);
    expect([...r.values]).toEqual(sum);
    let named: unknown;
    try {
      combinePacked(w.dealt.publicKey, product, [s1!, s2!]);
    } catch (e) {
      named = isCipherMLError(e, 'CIPHERML_E_THRESHOLD_SHARE_INVALID') ? e.details?.['holders'] : e;
    }
    expect(named).toEqual([1]);
    // Broken build: without verification the cheater's share corrupts the aggregate: a wrong sum,
    // or, when the garbage falls outside the slots' range, a range error that names no holder.
    let unverified: unknown;
    defences.thresholdShareProofs = false;
    try {
      unverified = [...combinePacked(w.dealt.publicKey, product, [s1!, s2!]).values];
    } catch (e) {
      unverified = e;
    } finally {
      resetDefences();
    }
    if (Array.isArray(unverified)) expect(unverified).not.toEqual(sum);
    else expect(isCipherMLError(unverified, 'CIPHERML_E_AGGREGATE_OUT_OF_RANGE')).toBe(true);
  });
});
