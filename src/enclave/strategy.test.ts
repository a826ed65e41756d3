import { create } from '@bufbuild/protobuf';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defences, resetDefences } from '../core/defences.ts';
import { isCipherMLError } from '../core/errors.ts';
import { generateIdentity, publicIdentity, Roster, type Identity } from '../core/identity.ts';
import { encryptVector, generatePaillierKeyPair, serializePacked, type PackingSpec, type PaillierPrivateKey } from '../paillier/index.ts';
import { FitResultSchema, TensorSpecSchema, type TensorSpec } from '../fl/gen/cipherml/fl/v1/fl_pb.ts';
import { contributionKeyId, sealContribution } from '../fl/contribution.ts';
import type { FitOutcome } from '../fl/strategy.ts';
import { EnclaveFedAvg } from './strategy.ts';

// The enclave's decryption floor. Adversary: the operator, who runs the server code around the
// enclave and can add any ciphertext it likes to a round (it holds the public key) but no
// worker's identity key. Claim: the enclave decrypts only the product of ≥ min-fit contributions
// signed by distinct roster workers for this round, each round once; without the floor
// (defences.contributionFloor off) one worker's update padded with the operator's Enc(0) is
// decrypted, i.e. that worker's update is revealed.

const PACKING: PackingSpec = { fractionalBits: 24, integerBits: 8, maxContributions: 8 };
const RUN = 'run-under-test';
const SPECS: TensorSpec[] = [create(TensorSpecSchema, { name: 'w', shape: [3] })];

describe('EnclaveFedAvg: the contribution floor', () => {
  let sk: PaillierPrivateKey;
  let workers: Identity[];
  let roster: Roster;
  beforeAll(async () => {
    sk = (await generatePaillierKeyPair({ bits: 1024 })).privateKey;
    workers = [generateIdentity('worker', '1'), generateIdentity('worker', '2')];
    roster = new Roster(workers.map(publicIdentity));
  });
  afterEach(() => resetDefences());

  async function outcome(s: EnclaveFedAvg, round: number, workerId: string, values: number[], signer: Identity | null): Promise<FitOutcome> {
    const packed = serializePacked(await encryptVector(sk.publicKey, values, { packing: PACKING }));
    // A worker sends its update in the one signed-contribution format; the operator's own Enc(0) is bare.
    const wire = signer === null ? packed : sealContribution(signer, { runId: RUN, round, weight: 0.5, numExamples: 1, workerId: signer.id, keyFingerprint: contributionKeyId(sk.publicKey) }, packed);
    const result = create(FitResultSchema, { model: { kind: { case: 'encrypted', value: { packed: wire, specs: SPECS, weightTotal: 0.5 } } }, numExamples: 1n });
    return { workerId, numExamples: 1, weight: 0.5, decoded: s.checkFitResult(result, SPECS, workerId), metrics: {} };
  }

  it('decrypts two signed contributions; refuses one real update padded with an unsigned Enc(0), a replayed round, a foreign signer; the broken build reveals the lone update', async () => {
    const s = new EnclaveFedAvg({ privateKey: sk, packing: PACKING, roster, minFit: 2, runId: RUN, label: 'simulation: no hardware isolation' });
    expect(s.keyHolder).toBe('enclave (simulation: no hardware isolation)');
    const ok = await s.aggregateFit(1, [await outcome(s, 1, '1', [0.25, 0.5, 0.75], workers[0]!), await outcome(s, 1, '2', [0.25, 0.5, 0.75], workers[1]!)], SPECS);
    expect(ok.kind === 'plain' ? Array.from(ok.tensors[0]!.values).map((v) => Math.round(v * 1e6) / 1e6) : null).toEqual([0.5, 1, 1.5]);

    const victim = [0.125, -0.25, 0.375];
    const padded = async (round: number) => [await outcome(s, round, '1', victim, workers[0]!), await outcome(s, round, '2', [0, 0, 0], null)];
    const refused = await s.aggregateFit(2, await padded(2), SPECS).catch((e: unknown) => e);
    expect(isCipherMLError(refused, 'CIPHERML_E_CONTRIBUTION_FLOOR')).toBe(true);
    // The operator signs its Enc(0) with a worker identity of its own making: not in the roster.
    const foreign = await s.aggregateFit(2, [await outcome(s, 2, '1', victim, workers[0]!), await outcome(s, 2, '9', [0, 0, 0], generateIdentity('worker', '9'))], SPECS).catch((e: unknown) => e);
    expect(isCipherMLError(foreign, 'CIPHERML_E_IDENTITY_UNKNOWN')).toBe(true);
    const replay = await s.aggregateFit(1, [await outcome(s, 1, '1', victim, workers[0]!), await outcome(s, 1, '2', victim, workers[1]!)], SPECS).catch((e: unknown) => e);
    expect(isCipherMLError(replay, 'CIPHERML_E_CONTRIBUTION_FLOOR')).toBe(true);
    const twice = await s.aggregateFit(3, [await outcome(s, 3, '1', victim, workers[0]!), await outcome(s, 3, '1', victim, workers[0]!)], SPECS).catch((e: unknown) => e);
    expect(isCipherMLError(twice, 'CIPHERML_E_CONTRIBUTION_FLOOR')).toBe(true);

    defences.contributionFloor = false;
    const broken = await s.aggregateFit(4, await padded(4), SPECS);
    // The sum divided by the weight total (0.5 + 0.5) is the victim's update itself.
    expect(broken.kind === 'plain' ? Array.from(broken.tensors[0]!.values).map((v) => Math.round(v * 1e6) / 1e6) : null).toEqual(victim);
  });

  it('min-fit below 2 is refused at construction (one contribution would be a worker\'s own update)', () => {
    expect(() => new EnclaveFedAvg({ privateKey: sk, packing: PACKING, roster, minFit: 1 })).toThrow(/at least 2 contributions/);
  });
});
