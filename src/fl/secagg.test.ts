import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { codeOf, codeOfAsync } from '../../test/helpers.ts';
import { loadCsvDataset, shardDataset, type CsvDataset } from '../ml/csv.ts';
import { logRegClient, logRegEvaluator } from './apps/logreg.ts';
import { resolveRunConfig, type RunConfig } from './config.ts';
import { SecAggRevealRequestSchema, SecAggRosterSchema, SecAggRoundSchema, SecAggStageTaskSchema } from './gen/cipherml/fl/v1/fl_pb.ts';
import type { NamedTensor } from './protocol.ts';
import { secAggSettings } from './run.ts';
import { SecAggFedAvg, answerStage, beginWorkerRound, maskedFromWire } from './secagg.ts';
import { revealRequestFromWire, revealRequestToWire, rosterFromWire, rosterToWire } from './secagg-wire.ts';
import { simulate } from './simulate.ts';

const data = (f: string) => join(import.meta.dirname, '..', '..', 'examples', 'data', f);
const defaults = { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: 1 };

describe('secure aggregation in the federated runtime (in-process, same code as over gRPC)', () => {
  let dir: string;
  let parts: CsvDataset[];
  let evaluate: Awaited<ReturnType<typeof logRegEvaluator>>;
  const clients = () => parts.map((d, i) => ({ id: String(i + 1), client: logRegClient(d, { ...defaults, seed: i + 1 }) }));
  const config = (d: string, extra: Partial<RunConfig> = {}): RunConfig =>
    resolveRunConfig({ flags: { numServerRounds: 6, minFitClients: 4, minAvailableClients: 5, minEvaluateClients: 4, runDir: d, cipherTimeWindow: 10_000, ...extra } });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-secagg-'));
    const guest = await loadCsvDataset(data('breast_homo_guest.csv'));
    const host = await loadCsvDataset(data('breast_homo_host.csv'));
    parts = [1, 2, 3].map((i) => shardDataset(guest, i, 3)).concat([1, 2].map((i) => shardDataset(host, i, 2)));
    evaluate = await logRegEvaluator(data('breast_homo_test.csv'), 'y');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  // What the server receives is checked over real gRPC, against every encoding of the updates and
  // for uniformity, in test/adversary/secagg-privacy.test.ts (which also fails with masks off).
  it('reaches the plain FedAvg model (parameters within quantization error) in the actively secure variant', async () => {
    const plain = await simulate({ config: config(join(dir, 'plain')), clients: clients(), evaluate });
    const secure = await simulate({ config: config(join(dir, 'pw'), { strategy: 'secagg' }), clients: clients(), evaluate });
    expect(secure.server.strategy).toBe('secagg');
    expect(secure.server.rounds).toBe(6);
    expect(Math.abs(secure.server.final!.serverAccuracy! - plain.server.final!.serverAccuracy!)).toBeLessThanOrEqual(0.01);
    const pm = plain.server.model!;
    secure.server.model!.forEach((t, k) => t.values.forEach((v, i) => expect(Math.abs(v - pm[k]!.values[i]!)).toBeLessThan(1e-3)));
    expect(secure.server.final!.secagg).toMatchObject({ mode: 'pw', survivors: 5, dropped: [], clipped: 0, active: true });
  });

  it('a client dropping after sharing keys leaves the exact survivors\' mean; stable-pw instead fails the round and retries', async () => {
    const r = await simulate({
      config: config(join(dir, 'drop'), { strategy: 'secagg', numServerRounds: 3 }),
      clients: clients().map((c) => (c.id === '3' ? { ...c, dropAt: { round: 2, stage: 'masked-input' as const } } : c)),
      evaluate,
    });
    expect(r.server.rounds).toBe(3);
    expect(r.server.history[1]!.secagg).toMatchObject({ survivors: 4, dropped: ['3'] });
    expect(r.server.final!.serverAccuracy!).toBeGreaterThan(0.9);

    // stable-pw cannot recover a dropout: the attempt fails (never a wrong sum) and the round is
    // retried once the server has noticed the client is gone.
    const stable = await simulate({
      config: config(join(dir, 'stable'), { secureAggregation: 'stable-pw', numServerRounds: 1, roundTimeout: 5, cipherTimeWindow: 2000 }),
      clients: clients().map((c) => (c.id === '2' ? { ...c, dropAt: { round: 1, stage: 'masked-input' as const } } : c)),
    });
    expect(stable.server.history[0]!.attempts).toBeGreaterThan(1);
    expect(stable.server.history[0]!.secagg).toMatchObject({ mode: 'stable-pw', survivors: 4, dropped: [] });
  }, 120_000);

  it('more dropouts than the threshold allows fail the round with a clear error, never a wrong sum', async () => {
    // 5 clients, threshold 3: 4 survivors are needed, 2 drop after sharing keys.
    const retries: string[] = [];
    const run = simulate({
      config: config(join(dir, 'too-many'), { strategy: 'secagg', numServerRounds: 1, roundTimeout: 3, cipherTimeWindow: 2000 }),
      clients: clients().map((c) => (c.id === '1' || c.id === '2' ? { ...c, dropAt: { round: 1, stage: 'masked-input' as const } } : c)),
      onServerEvent: (e) => {
        if (e.type === 'round-retry') retries.push(e.reason);
      },
    });
    expect(await codeOfAsync(() => run)).toBe('CIPHERML_E_ROUND_FAILED');
    expect(retries[0]).toMatch(/3 clients completed masked input; at least 4 are needed/);
  }, 120_000);

  it('counts clipped values instead of clipping silently', async () => {
    const r = await simulate({ config: config(join(dir, 'clip'), { strategy: 'secagg', numServerRounds: 2, clippingRange: 0.05 }), clients: clients() });
    expect((r.server.final!.secagg as { clipped: number }).clipped).toBeGreaterThan(0);
  });
});

describe('secure aggregation wire checks', () => {
  const model: NamedTensor[] = [{ name: 'w', shape: [3], values: Float64Array.of(0.5, -1, 2) }];
  const round = create(SecAggRoundSchema, { mode: 'pw', roundId: 'r1', length: 4, modulusBits: 26, threshold: 2, clippingRange: 8, quantizationRange: 2 ** 22 });

  it('the worker refuses a round whose length does not match its model, and a stage of another round', () => {
    expect(codeOf(() => beginWorkerRound({ ...round, length: 5 }, 'a', model, 0.5))).toBe('CIPHERML_E_MODEL_MISMATCH');
    const state = beginWorkerRound(round, 'a', model, 0.5);
    state.client.advertise();
    const other = create(SecAggStageTaskSchema, { roundId: 'r0', stage: { case: 'unmask', value: { survivors: ['a'], dropped: [] } } });
    expect(codeOf(() => answerStage(state, other))).toBe('CIPHERML_E_PROTOCOL');
    // Unmasking before the masked-input stage is out of order.
    expect(codeOf(() => answerStage(state, { ...other, roundId: 'r1' }))).toBe('CIPHERML_E_PROTOCOL');
  });

  it('masked vectors of the wrong length are rejected before any arithmetic', () => {
    expect(codeOf(() => maskedFromWire(new Uint8Array(15), 4, 'masked'))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    expect(Array.from(maskedFromWire(Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 128), 2, 'masked'))).toEqual([1, 2 ** 31]);
  });

  it('the server refuses parameters in a secagg fit result and too few clients for dropout recovery', () => {
    const s = new SecAggFedAvg(secAggSettings(resolveRunConfig({ flags: { strategy: 'secagg' } })));
    const specs = [{ name: 'w', shape: [3] }] as never;
    expect(codeOf(() => s.beginFit('r', 2, specs))).toBe('CIPHERML_E_CONFIG_INVALID');
    s.beginFit('r', 5, specs);
    const withModel = { model: { kind: { case: 'plain', value: { tensors: [] } } }, metrics: {}, numExamples: 1n } as never;
    expect(codeOf(() => s.checkFitResult(withModel, specs, 'result'))).toBe('CIPHERML_E_PROTOCOL');
    const badKeys = { metrics: {}, numExamples: 1n, secaggKeys: { cPk: new Uint8Array(31), sPk: new Uint8Array(32) } } as never;
    expect(codeOf(() => s.checkFitResult(badKeys, specs, 'result'))).toBe('CIPHERML_E_PROTOCOL');
  });

  it('a threshold below the collusion rule is refused, or only warned about when configured', () => {
    const specs = [{ name: 'w', shape: [3] }] as never;
    const cfg = (extra: Partial<RunConfig>) => new SecAggFedAvg(secAggSettings(resolveRunConfig({ flags: { strategy: 'secagg', reconstructSecretsThreshold: 3, collusionModel: 'server-clients', ...extra } })));
    expect(codeOf(() => cfg({}).beginFit('r', 6, specs))).toBe('CIPHERML_E_CONFIG_INVALID');
    expect(cfg({ thresholdViolation: 'warn' }).beginFit('r', 6, specs).threshold).toBe(3);
  });
});

describe('commit–reveal wire forms', () => {
  it('a reveal request and a view with committee and reveals survive the wire; the fit task fixes the committee size', () => {
    const root = new Uint8Array(32).fill(7);
    const req = { roundId: 'r', clients: 9, root, x: 4, proof: [new Uint8Array(32).fill(1)], committee: 2 };
    expect(revealRequestFromWire('r', create(SecAggRevealRequestSchema, revealRequestToWire(req)))).toEqual(req);
    const entry = { id: 'w1', x: 1, cPk: new Uint8Array(32).fill(2), sPk: new Uint8Array(32).fill(3), signature: new Uint8Array(64).fill(4), commitment: new Uint8Array(32).fill(5) };
    const view = { roundId: 'r', entries: [entry], degree: 6, graphSeed: 'ab', clients: 9, root, proof: [root], committee: [entry], reveals: [new Uint8Array(32).fill(6)] };
    expect(rosterFromWire('r', create(SecAggRosterSchema, rosterToWire(view)))).toEqual(view);
    const round = new SecAggFedAvg({ mode: 'secagg+', clippingRange: 8, quantizationRange: 2 ** 22, modulusRange: 0, threshold: 0, shareSecretsRatio: 0.5, stageTimeoutMs: 1000, numShares: 0, collusion: false, onViolation: 'refuse' }).beginFit('r', 1000, []);
    expect(round.seedCommittee).toBe(26);
  });
});
