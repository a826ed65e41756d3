import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import http2 from 'node:http2';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { codeOfAsync } from './helpers.ts';
import { loadCsvDataset } from '../src/ml/csv.ts';
import { logRegClient } from '../src/fl/apps/logreg.ts';
import { FederatedService } from '../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { PROTOCOL_VERSION, fromRpcError, specsOf, tensorsToWire } from '../src/fl/protocol.ts';
import { FlServer, type ServerSettings } from '../src/fl/server.ts';
import { PlainFedAvg } from '../src/fl/strategy.ts';
import { createRpcTransport } from '../src/fl/transport.ts';
import { runWorker } from '../src/fl/worker.ts';

// The real HTTP/2 transport: TLS, message size limits, malformed frames.

const data = (f: string) => join(import.meta.dirname, '..', 'examples', 'data', f);

function settings(dir: string, over: Partial<ServerSettings> = {}): ServerSettings {
  return {
    address: '127.0.0.1:0', numRounds: 2, fractionFit: 1, fractionEvaluate: 0, minFitClients: 1, minEvaluateClients: 0, minAvailableClients: 1,
    roundTimeoutMs: 30_000, joinTimeoutMs: 30_000, evalEvery: 1, runDir: join(dir, 'run'), secret: '', maxMessageBytes: 1 << 20,
    fitConfig: {}, seed: 1, pollWaitMs: 200, ...over,
  };
}

describe('federated transport over real HTTP/2', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-tls-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('trains over TLS with certificate files, and a client without the CA is refused', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    const server = new FlServer({ settings: settings(dir, { tls: { cert, key }, runDir: join(dir, 'tls-run') }), strategy: new PlainFedAvg() });
    const address = await server.listen();
    const running = server.run();
    const client = logRegClient(await loadCsvDataset(data('breast_homo_guest.csv')), { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: 1 });
    const noCa = await codeOfAsync(() => runWorker({ workerId: 'x', token: '', client, transport: createRpcTransport({ address, maxMessageBytes: 1 << 20, secure: true }), reconnectTimeoutMs: 500 }));
    expect(noCa).toBe('CIPHERML_E_PEER_UNAVAILABLE');
    const summary = await runWorker({ workerId: 'w1', token: '', client, transport: createRpcTransport({ address, maxMessageBytes: 1 << 20, tls: { ca: cert } }) });
    expect(summary.rounds).toBe(2);
    expect((await running).rounds).toBe(2);
    await server.close();
  });

  it('refuses a message above max-message-bytes and a malformed frame, and keeps serving', async () => {
    const server = new FlServer({ settings: settings(dir, { maxMessageBytes: 4096, runDir: join(dir, 'size-run') }), strategy: new PlainFedAvg() });
    const address = await server.listen();
    const rpc = createClient(FederatedService, createRpcTransport({ address, maxMessageBytes: 1 << 20 }));
    const big = [{ name: 'weights', shape: [2000], values: new Float64Array(2000) }];
    const tooLarge = await codeOfAsync(() =>
      rpc.join({ protocolVersion: PROTOCOL_VERSION, workerId: 'big', instanceId: 'i', token: '', numExamples: 1n, model: specsOf(big), initial: { tensors: tensorsToWire(big) } }).catch((e: unknown) => Promise.reject(fromRpcError(e, 'server'))),
    );
    expect(tooLarge).toBe('CIPHERML_E_MESSAGE_TOO_LARGE');

    // A gRPC frame whose payload is not a JoinRequest.
    const session = http2.connect(`http://${address}`);
    const status = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/cipherml.fl.v1.FederatedService/Join', 'content-type': 'application/grpc', te: 'trailers' });
      let grpcStatus = '';
      req.on('response', (h) => (grpcStatus = String(h['grpc-status'] ?? grpcStatus)));
      req.on('trailers', (t) => (grpcStatus = String(t['grpc-status'] ?? grpcStatus)));
      req.on('end', () => resolve(grpcStatus));
      req.on('error', reject);
      req.resume();
      req.end(Buffer.from([0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff]));
    });
    session.close();
    expect(status).not.toBe('0');
    expect(status).not.toBe('');

    const small = [{ name: 'weights', shape: [3], values: new Float64Array(3) }];
    const ok = await rpc.join({ protocolVersion: PROTOCOL_VERSION, workerId: 'small', instanceId: 'i', token: '', numExamples: 1n, model: specsOf(small) });
    expect(ok.sessionId).toMatch(/^[0-9a-f]{32}$/);
    await server.close();
  });
});
