import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { createClient, createRouterTransport, type Interceptor } from '@connectrpc/connect';
import { codeOfAsync } from '../../test/helpers.ts';
import { leaks, recorder, recording } from '../../test/fl-helpers.ts';
import { loadCsvDataset } from '../ml/csv.ts';
import { encryptVector, generatePaillierKeyPair, serializePacked, type PaillierKeyPair } from '../paillier/index.ts';
import { logRegClient, logRegEvaluator } from './apps/logreg.ts';
import { KeyAuthority } from './authority.ts';
import { resolveRunConfig, type RunConfig } from './config.ts';
import { FederatedService, KeyAuthorityService, ModelPayloadSchema } from './gen/cipherml/fl/v1/fl_pb.ts';
import { PROTOCOL_VERSION, deriveToken, fromRpcError, specsOf, tensorsToWire, type NamedTensor } from './protocol.ts';
import { FlServer } from './server.ts';
import { simulate } from './simulate.ts';
import { PaillierFedAvg, weightedFlat } from './strategy.ts';
import type { FlClient } from './worker.ts';

const data = (f: string) => join(import.meta.dirname, '..', '..', 'examples', 'data', f);
const defaults = { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: 1 };

describe('federated LR in one process (same code as the multi-process runtime)', () => {
  let dir: string;
  let clients: () => Promise<{ id: string; client: FlClient }[]>;
  let evaluate: Awaited<ReturnType<typeof logRegEvaluator>>;
  const config = (d: string, extra: Partial<RunConfig> = {}): RunConfig =>
    resolveRunConfig({ flags: { numServerRounds: 8, keyBits: 1024, runDir: d, authorityAddress: 'in-process:1', ...extra } });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-fl-'));
    const guest = await loadCsvDataset(data('breast_homo_guest.csv'));
    const host = await loadCsvDataset(data('breast_homo_host.csv'));
    clients = async () => [
      { id: '1', client: logRegClient(guest, { ...defaults, seed: 1 }) },
      { id: '2', client: logRegClient(host, { ...defaults, seed: 2 }) },
    ];
    evaluate = await logRegEvaluator(data('breast_homo_test.csv'), 'y');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('Paillier FedAvg reaches the plain FedAvg model: same accuracy, parameters within fixed-point tolerance', async () => {
    const plain = await simulate({ config: config(join(dir, 'plain')), clients: await clients(), evaluate });
    const fits: { round: number; precomputed: number | undefined }[] = [];
    const paillier = await simulate({
      config: config(join(dir, 'paillier'), { strategy: 'paillier' }),
      clients: await clients(),
      evaluate,
      onWorkerEvent: (_id, e) => void (e.type === 'fit' && fits.push({ round: e.round, precomputed: e.precomputed })),
    });
    expect(plain.server.rounds).toBe(8);
    expect(paillier.server.rounds).toBe(8);
    const a = plain.server.final!.serverAccuracy!;
    const b = paillier.server.final!.serverAccuracy!;
    expect(Math.abs(a - b)).toBeLessThanOrEqual(0.01);
    expect(b).toBeGreaterThanOrEqual(0.93);
    const pm = plain.server.model!;
    const em = paillier.server.model!;
    pm.forEach((t, k) => t.values.forEach((v, i) => expect(Math.abs(v - em[k]!.values[i]!)).toBeLessThan(1e-3)));
    expect(paillier.workers.every((w) => w.model !== null)).toBe(true);
    // Every update, round 1 included, was encrypted with randomizers precomputed while the worker waited.
    expect(fits.length).toBe(8 * paillier.workers.length);
    expect(fits.every((f) => f.precomputed !== undefined && f.precomputed > 0)).toBe(true);
  });

  it('in Paillier mode no worker parameter reaches the server in the clear (and the check does see them in plain mode)', async () => {
    const localPlain: Float64Array[] = [];
    const seenPlain: Uint8Array[] = [];
    await simulate({
      config: config(join(dir, 'rec-plain'), { numServerRounds: 2 }),
      clients: (await clients()).map(({ id, client }) => ({ id, client: recording(client, localPlain) })),
      serverInterceptors: [recorder(seenPlain)],
    });
    expect(leaks(localPlain, seenPlain)).toBe(true);

    const local: Float64Array[] = [];
    const seen: Uint8Array[] = [];
    await simulate({
      config: config(join(dir, 'rec-paillier'), { numServerRounds: 2, strategy: 'paillier' }),
      clients: (await clients()).map(({ id, client }) => ({ id, client: recording(client, local) })),
      serverInterceptors: [recorder(seen)],
    });
    expect(local.length).toBeGreaterThan(0);
    expect(leaks(local, seen)).toBe(false);
  });

  it('key-holder "clients": the server keeps only an encrypted model; the workers decrypt it', async () => {
    const r = await simulate({ config: config(join(dir, 'clients'), { strategy: 'paillier', keyHolder: 'clients' }), clients: await clients(), evaluate });
    expect(r.server.model).toBeNull();
    expect(r.server.final!.serverAccuracy).toBeNull();
    const model = r.workers[0]!.model!;
    expect((await evaluate(model)).accuracy).toBeGreaterThanOrEqual(0.93);
  });
});

describe('key authority', () => {
  let pair: PaillierKeyPair;
  beforeAll(async () => {
    pair = await generatePaillierKeyPair({ bits: 1024 });
  });

  it('never hands the secret key to the server, and never decrypts a single update', async () => {
    const responses: Uint8Array[] = [];
    const capture: Interceptor = (next) => async (req) => {
      const res = await next(req);
      if (!res.stream) responses.push(toBinary(req.method.output, res.message));
      return res;
    };
    const authority = new KeyAuthority({ keyPair: pair, keyHolder: 'authority', secret: 's', minContributions: 2 });
    const client = createClient(KeyAuthorityService, createRouterTransport((r) => authority.routes(r), { router: { interceptors: [capture] } }));
    const token = deriveToken('s', 'server');
    await client.getPublicKey({ protocolVersion: PROTOCOL_VERSION, token, partyId: 'server' });
    const err = await codeOfAsync(() => client.getKeyPair({ protocolVersion: PROTOCOL_VERSION, token, workerId: 'server' }).catch((e: unknown) => Promise.reject(fromRpcError(e, 'authority'))));
    expect(err).toBe('CIPHERML_E_FORBIDDEN');
    const one = serializePacked(await encryptVector(pair.publicKey, [1, 2, 3]));
    const single = await codeOfAsync(() => client.decryptAggregate({ protocolVersion: PROTOCOL_VERSION, token, partyId: 'server', round: 1, packed: one }).catch((e: unknown) => Promise.reject(fromRpcError(e, 'authority'))));
    expect(single).toBe('CIPHERML_E_CONTRIBUTION_FLOOR');
    const a = await encryptVector(pair.publicKey, [1, 2, 3]);
    const two = serializePacked(a.add(await encryptVector(pair.publicKey, [1, 1, 1])));
    const ok = await client.decryptAggregate({ protocolVersion: PROTOCOL_VERSION, token, partyId: 'server', round: 1, packed: two });
    expect(ok.contributions).toBe(2);
    const bad = await codeOfAsync(() => client.getPublicKey({ protocolVersion: PROTOCOL_VERSION, token: 'wrong', partyId: 'server' }).catch((e: unknown) => Promise.reject(fromRpcError(e, 'authority'))));
    expect(bad).toBe('CIPHERML_E_UNAUTHENTICATED');
    const all = Buffer.concat(responses.map((b) => Buffer.from(b)));
    for (const secret of [pair.privateKey.p, pair.privateKey.q]) expect(all.includes(Buffer.from(secret.toString(16).padStart(128, '0'), 'hex'))).toBe(false);
  });
});

describe('server input checks (direct RPC, the server keeps serving)', () => {
  let dir: string;
  let pair: PaillierKeyPair;
  let other: PaillierKeyPair;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-srv-'));
    pair = await generatePaillierKeyPair({ bits: 1024 });
    other = await generatePaillierKeyPair({ bits: 1024 });
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('rejects bad joins and bad results with typed errors and completes the round with the good worker', async () => {
    const strategy = new PaillierFedAvg({ kind: 'server', privateKey: pair.privateKey }, { fractionalBits: 16, integerBits: 15, maxContributions: 1000 });
    const model: NamedTensor[] = [{ name: 'weights', shape: [3], values: new Float64Array(3) }];
    const server = new FlServer({
      settings: {
        address: 'in-memory:0', numRounds: 1, fractionFit: 1, fractionEvaluate: 0, minFitClients: 1, minEvaluateClients: 0, minAvailableClients: 2,
        roundTimeoutMs: 20_000, joinTimeoutMs: 20_000, evalEvery: 1, runDir: join(dir, 'run'), secret: 'run-secret', maxMessageBytes: 1 << 20,
        fitConfig: {}, seed: 1, pollWaitMs: 100,
      },
      strategy,
      initialModel: model,
    });
    await server.prepare();
    const rpc = createClient(FederatedService, createRouterTransport((r) => server.routes(r)));
    const call = <T>(p: Promise<T>) => codeOfAsync(() => p.catch((e: unknown) => Promise.reject(fromRpcError(e, 'server'))));
    const join1 = (id: string, over: Record<string, unknown> = {}) =>
      rpc.join({ protocolVersion: PROTOCOL_VERSION, workerId: id, instanceId: `i-${id}`, token: deriveToken('run-secret', id), numExamples: 10n, model: specsOf(model), ...over });

    expect(await call(join1('w1', { token: deriveToken('run-secret', 'w2') }))).toBe('CIPHERML_E_UNAUTHENTICATED');
    expect(await call(join1('w1', { protocolVersion: 99 }))).toBe('CIPHERML_E_PROTOCOL');
    expect(await call(join1('w1', { model: specsOf([{ name: 'weights', shape: [4], values: new Float64Array(4) }]) }))).toBe('CIPHERML_E_MODEL_MISMATCH');
    const stale = (await join1('w1')).sessionId;
    // A restarted process with the same id and token replaces the stale session.
    const s1 = (await join1('w1', { instanceId: 'another-process' })).sessionId;
    expect(await call(rpc.heartbeat({ sessionId: stale }))).toBe('CIPHERML_E_PROTOCOL');
    const s2 = (await join1('w2')).sessionId;

    const running = server.run();
    const pull = async (sessionId: string) => {
      for (;;) {
        const { task } = await rpc.pullTask({ sessionId, waitMs: 100 });
        if (task?.body.case === 'fit') return task;
      }
    };
    const [t1, t2] = await Promise.all([pull(s1), pull(s2)]);
    const fit = async (key: PaillierKeyPair, weight: number) => {
      const enc = await encryptVector(key.publicKey, weightedFlat([{ name: 'weights', shape: [3], values: Float64Array.of(1, 2, 3) }], weight));
      return create(ModelPayloadSchema, { kind: { case: 'encrypted', value: { packed: serializePacked(enc), specs: specsOf(model), weightTotal: weight } } });
    };
    const push = (sessionId: string, task: typeof t1, payload: Awaited<ReturnType<typeof fit>>) =>
      rpc.pushResult({ sessionId, taskId: task.taskId, round: task.round, body: { case: 'fit', value: { model: payload, numExamples: 10n, metrics: {} } } });
    const plainPayload = create(ModelPayloadSchema, { kind: { case: 'plain', value: { tensors: tensorsToWire(model) } } });

    expect(await call(push(s1, t1, plainPayload))).toBe('CIPHERML_E_PROTOCOL');
    expect(await call(push(s2, t2, await fit(other, 0.5)))).toBe('CIPHERML_E_KEY_MISMATCH');
    // Both tasks of attempt 1 failed: the round is retried with fresh tasks.
    const [u1, u2] = await Promise.all([pull(s1), pull(s2)]);
    expect(u1.taskId).not.toBe(t1.taskId);
    expect(await call(push(s1, t1, await fit(pair, 0.5)))).toBe('CIPHERML_E_ROUND_CLOSED');
    await push(s2, u2, await fit(pair, u2.body.case === 'fit' ? u2.body.value.weight : 0));
    await rpc.pushResult({ sessionId: s1, taskId: u1.taskId, round: u1.round, body: { case: 'error', value: { code: 'CIPHERML_E_NOT_FINITE', message: 'local data broke' } } });
    const summary = await running;
    expect(summary.rounds).toBe(1);
    expect(summary.final).toMatchObject({ attempts: 2, fitResults: 1, fitFailures: 1 });
    expect(Array.from(summary.model![0]!.values).map((v) => Math.round(v * 1e4) / 1e4)).toEqual([1, 2, 3]);
    await server.close();
  });
});
