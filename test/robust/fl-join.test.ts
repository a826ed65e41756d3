import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import { codeOfAsync } from '../helpers.ts';
import { loadCsvDataset } from '../../src/ml/csv.ts';
import { logRegClient } from '../../src/fl/apps/logreg.ts';
import { FederatedService, JoinRequestSchema } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { PROTOCOL_VERSION, fromRpcError, specsOf, tensorsToWire } from '../../src/fl/protocol.ts';
import { FlServer, type ServerEvent, type ServerSettings } from '../../src/fl/server.ts';
import { PlainFedAvg } from '../../src/fl/strategy.ts';
import { createRpcTransport } from '../../src/fl/transport.ts';
import { runWorker, type FlClient } from '../../src/fl/worker.ts';
import type { CsvDataset } from '../../src/ml/csv.ts';

// Adversary: any party that reaches the federated server's port (with or without a valid token)
// and sends hostile Join messages before the honest workers. Over real HTTP/2 gRPC on loopback.

const data = (f: string) => join(import.meta.dirname, '..', '..', 'examples', 'data', f);

function settings(dir: string, name: string): ServerSettings {
  return {
    address: '127.0.0.1:0', numRounds: 1, fractionFit: 1, fractionEvaluate: 0, minFitClients: 2, minEvaluateClients: 0, minAvailableClients: 2,
    roundTimeoutMs: 30_000, joinTimeoutMs: 30_000, evalEvery: 1, runDir: join(dir, name), secret: '', maxMessageBytes: 1 << 20,
    fitConfig: {}, seed: 1, pollWaitMs: 200,
  };
}

const join0 = (over: Record<string, unknown>) =>
  create(JoinRequestSchema, { protocolVersion: PROTOCOL_VERSION, workerId: 'mallory', instanceId: 'm', token: '', numExamples: 10n, ...over });

describe('a refused Join leaves no trace (real gRPC on loopback)', () => {
  let dir: string;
  let guest: CsvDataset;
  let host: CsvDataset;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-robust-join-'));
    guest = await loadCsvDataset(data('breast_homo_guest.csv'));
    host = await loadCsvDataset(data('breast_homo_host.csv'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const client = (d: CsvDataset): FlClient => logRegClient(d, { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: 1 });
  const features = () => guest.features[0]!.length;
  const hostile = () => {
    const nanModel = [{ name: 'weights', shape: [features()], values: new Float64Array(features()).fill(Number.NaN) }];
    return [
      { what: 'NaN initial parameters', req: join0({ model: specsOf(nanModel), initial: { tensors: tensorsToWire(nanModel) } }), code: 'CIPHERML_E_NOT_FINITE' },
      { what: 'num_examples = 0', req: join0({ numExamples: 0n, model: [{ name: 'weights', shape: [3] }] }), code: 'CIPHERML_E_INVALID_ARGUMENT' },
      { what: 'shape [4294967295]', req: join0({ model: [{ name: 'w', shape: [4294967295] }] }), code: 'CIPHERML_E_INPUT_TOO_LARGE' },
      { what: 'shape [300000000]', req: join0({ model: [{ name: 'w', shape: [300000000] }] }), code: 'CIPHERML_E_INPUT_TOO_LARGE' },
      { what: 'zero dimension', req: join0({ model: [{ name: 'w', shape: [0] }] }), code: 'CIPHERML_E_INVALID_ARGUMENT' },
    ];
  };

  it('refuses each hostile first join with a typed error; the honest workers then train a full round', async () => {
    const events: ServerEvent[] = [];
    const server = new FlServer({ settings: settings(dir, 'protected'), strategy: new PlainFedAvg(), onEvent: (e) => events.push(e) });
    const address = await server.listen();
    const rpc = createClient(FederatedService, createRpcTransport({ address, maxMessageBytes: 1 << 20 }));
    const rss0 = process.memoryUsage().rss;
    for (const h of hostile()) {
      const got = await codeOfAsync(() => rpc.join(h.req).catch((e: unknown) => Promise.reject(fromRpcError(e, 'server'))));
      expect(got, h.what).toBe(h.code);
    }
    // The 69-byte join declaring 300 M parameters (2.4 GB) moved almost no memory.
    const small = join0({ workerId: 'x', instanceId: 'i', model: [{ name: 'w', shape: [300000000] }] });
    expect(toBinary(JoinRequestSchema, small).length).toBeLessThanOrEqual(69);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(64 << 20);
    expect(events.some((e) => e.type === 'joined')).toBe(false);

    const running = server.run();
    const opts = { transport: createRpcTransport({ address, maxMessageBytes: 1 << 20 }), token: '', reconnectTimeoutMs: 5000, pollWaitMs: 200 };
    const [a, b] = await Promise.all([runWorker({ ...opts, workerId: 'guest', client: client(guest) }), runWorker({ ...opts, workerId: 'host', client: client(host) })]);
    expect(a.rounds).toBe(1);
    expect(b.rounds).toBe(1);
    const summary = await running;
    expect(summary.final?.fitResults).toBe(2);
    expect(summary.model?.[0]?.shape).toEqual([features()]);
    await server.close();
  });

  it('without the defence (unsafeNaiveJoin) the same first join poisons the run: the test can fail', { timeout: 30_000 }, async () => {
    const server = new FlServer({ settings: settings(dir, 'naive'), strategy: new PlainFedAvg(), unsafeNaiveJoin: true });
    const address = await server.listen();
    const rpc = createClient(FederatedService, createRpcTransport({ address, maxMessageBytes: 1 << 20 }));
    const nan = [{ name: 'weights', shape: [3], values: Float64Array.of(Number.NaN, 0, 0) }];
    const wrong = join0({ model: specsOf(nan), initial: { tensors: tensorsToWire(nan) } });
    expect(await codeOfAsync(() => rpc.join(wrong).catch((e: unknown) => Promise.reject(fromRpcError(e, 'server'))))).toBe('CIPHERML_E_NOT_FINITE');
    // The refused join fixed the shape: an honest worker is now refused.
    const honest = await codeOfAsync(() =>
      runWorker({ workerId: 'guest', client: client(guest), token: '', transport: createRpcTransport({ address, maxMessageBytes: 1 << 20 }), reconnectTimeoutMs: 500 }),
    );
    expect(honest).toBe('CIPHERML_E_MODEL_MISMATCH');
    await server.close();
  });
});
