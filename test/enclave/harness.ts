import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Interceptor } from '@connectrpc/connect';
import { DEFAULT_POLICY, createSimulationReport, reportDataBinding, type AttestationPolicy } from '../../src/attest/index.ts';
import { generateIdentity, publicIdentity, Roster, type Identity } from '../../src/core/identity.ts';
import { loadCsvDataset, shardDataset } from '../../src/ml/csv.ts';
import { logRegClient } from '../../src/fl/apps/logreg.ts';
import { FlServer, type ServerSettings } from '../../src/fl/server.ts';
import type { Strategy } from '../../src/fl/strategy.ts';
import { runWorker, type FlClient, type WorkerSummary } from '../../src/fl/worker.ts';
import { serializePublicKey, type PackingSpec, type PaillierPrivateKey } from '../../src/paillier/index.ts';
import { EnclaveAggregator, serveEnclave, type AttestationBundle, type EnclaveListener } from '../../src/enclave/aggregator.ts';
import { attestAggregator, attestedTransport, attestedKey } from '../../src/enclave/attested-worker.ts';
import type { EnclaveTls } from '../../src/enclave/tls.ts';

/** Shared parties of the enclave suites: the aggregator identity (also the simulation signer) and two workers. */
export interface EnclaveParties {
  readonly server: Identity;
  readonly workers: readonly Identity[];
  readonly roster: Roster;
}

export const MAX = 4 << 20;
export const PACKING: PackingSpec = { fractionalBits: 24, integerBits: 8, maxContributions: 4 };
/** Two measurements: the build the policy names and another one. */
export const MEASUREMENT = 'a1'.repeat(48);
export const OTHER_MEASUREMENT = 'b2'.repeat(48);
export const SECRET = new Uint8Array(32).fill(7);

export function makeEnclaveParties(): EnclaveParties {
  const server = generateIdentity('server', 'aggregator');
  const workers = [generateIdentity('worker', '1'), generateIdentity('worker', '2')];
  return { server, workers, roster: new Roster([server, ...workers].map(publicIdentity)) };
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `cipherml-enclave-${prefix}-`));
}

/** The worker policy of these tests: simulation allowed, the aggregator's key pinned, MEASUREMENT expected. */
export function policyFor(p: EnclaveParties, over: Partial<AttestationPolicy> = {}): AttestationPolicy {
  return { ...DEFAULT_POLICY, kind: 'simulation', measurements: [MEASUREMENT], allowSimulation: true, simulationSigners: [p.server.fingerprint], ...over };
}

export function settings(runDir: string, over: Partial<ServerSettings> = {}): ServerSettings {
  return {
    address: '127.0.0.1:0',
    numRounds: 1,
    fractionFit: 1,
    fractionEvaluate: 0,
    minFitClients: 2,
    minEvaluateClients: 2,
    minAvailableClients: 2,
    roundTimeoutMs: 20_000,
    joinTimeoutMs: 20_000,
    evalEvery: 1,
    runDir,
    secret: '',
    maxMessageBytes: MAX,
    fitConfig: {},
    seed: 1,
    pollWaitMs: 200,
    ...over,
  };
}

/** Records the RPC method names the server receives (the byte recorder of the claims). */
export function methodRecorder(sink: string[]): Interceptor {
  return (next) => async (req) => {
    sink.push(req.method.name);
    return next(req);
  };
}

export async function startAggregator(p: EnclaveParties, runDir: string, over: { measurement?: string; rounds?: number; received?: string[] } = {}): Promise<EnclaveAggregator> {
  return EnclaveAggregator.start({
    tee: 'simulation',
    settings: settings(runDir, { numRounds: over.rounds ?? 1 }),
    trust: { identity: p.server, roster: p.roster },
    packing: PACKING,
    keyBits: 1024,
    measurement: over.measurement ?? MEASUREMENT,
    sealingSecret: SECRET,
    ...(over.received === undefined ? {} : { interceptors: [methodRecorder(over.received)] }),
  });
}

let data: Awaited<ReturnType<typeof loadCsvDataset>> | null = null;
export async function dataClient(k: number, n: number): Promise<FlClient> {
  data ??= await loadCsvDataset(join(import.meta.dirname, '..', '..', 'examples', 'data', 'breast_homo_guest.csv'));
  return logRegClient(shardDataset(data, k, n), { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: k });
}

/** A worker with --require-attestation: attests, then runs over the pinned channel with the join check. */
export async function attestedWorker(p: EnclaveParties, i: number, address: string, policy: AttestationPolicy, runId?: string): Promise<WorkerSummary> {
  const a = await attestAggregator(address, policy, runId === undefined ? {} : { runId });
  return runWorker({
    workerId: p.workers[i]!.id,
    token: '',
    client: await dataClient(i + 1, 2),
    trust: { identity: p.workers[i]!, roster: p.roster },
    transport: attestedTransport(address, a, MAX),
    attestedKey: attestedKey(a),
    minKeyBits: 1024,
    pollWaitMs: 200,
    reconnectTimeoutMs: 2000,
  });
}

/**
 * The operator's server: any strategy and run id, served under a TLS key and attestation bundle
 * of the operator's choosing (in simulation the operator holds every secret, so it can build
 * any of them; these are the documents a hardware TEE would never sign for such a server).
 */
export async function operatorServer(p: EnclaveParties, runDir: string, o: { strategy: Strategy; runId: string; tls: EnclaveTls; bundle: AttestationBundle; received: string[] }): Promise<{ listener: EnclaveListener; server: FlServer; run: Promise<unknown> }> {
  const server = new FlServer({ settings: { ...settings(runDir), trust: { identity: p.server, roster: p.roster } }, strategy: o.strategy, runId: o.runId });
  await server.prepare();
  const listener = await serveEnclave({ address: '127.0.0.1:0', tls: o.tls, routes: (r) => server.routes(r), attestation: o.bundle, maxMessageBytes: MAX, interceptors: [methodRecorder(o.received)] });
  const run = server.run().catch((e: unknown) => e);
  return { listener, server, run };
}

/** A genuine-looking simulation bundle binding (key, tls, run), signed with the pinned simulator key. */
export function bundleFor(p: EnclaveParties, key: PaillierPrivateKey, tls: EnclaveTls, runId: string, measurement = MEASUREMENT): AttestationBundle {
  const pk = serializePublicKey(key.publicKey);
  const doc = createSimulationReport(p.server, { measurement, reportData: reportDataBinding({ paillierPublicKey: pk, tlsPublicKey: tls.spki, runId }) });
  return { kind: 'simulation', document: Buffer.from(doc).toString('base64'), paillierPublicKey: Buffer.from(pk).toString('base64'), runId, isolation: 'simulation: no hardware isolation' };
}
