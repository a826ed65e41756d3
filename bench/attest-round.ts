import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY, SIMULATION_LABEL, type AttestationPolicy } from '../src/attest/index.ts';
import { generateIdentity, publicIdentity, Roster, signMessage, type Identity } from '../src/core/identity.ts';
import { EnclaveAggregator, attestAggregator, attestedKey, attestedTransport } from '../src/enclave/index.ts';
import { logRegClient } from '../src/fl/apps/logreg.ts';
import { SIG_CONTEXT, keyStatement } from '../src/fl/identity-auth.ts';
import { FlServer, type RoundRecord, type ServerSettings } from '../src/fl/server.ts';
import { PaillierFedAvg } from '../src/fl/strategy.ts';
import { createRpcTransport } from '../src/fl/transport.ts';
import { runWorker, type WorkerOptions } from '../src/fl/worker.ts';
import { loadCsvDataset, shardDataset } from '../src/ml/csv.ts';
import { generatePaillierKeyPair, serializePublicKey, type PackingSpec } from '../src/paillier/index.ts';

/**
 * Round overhead of the attested aggregator (simulation mode: TLS with the enclave's key, the
 * contribution floor re-checking every worker signature, the checkpoint sealed after each round)
 * against the named baseline of the same run: the plain Paillier server-key round (key-holder
 * "server", identity mode, loopback gRPC without TLS), same key size, same two workers and data.
 * Also the one-time cost a worker pays before sending: fetching and verifying the attestation.
 */

export interface RoundOverheadResult {
  readonly rounds: number;
  readonly keyBits: number;
  readonly baseline: string;
  /** Median round wall time, ms (server history). */
  readonly plainRoundMs: number;
  readonly enclaveRoundMs: number;
  readonly ratio: number;
  /** Median time of one worker's attestation (TLS connect, GET, verify, binding), ms. */
  readonly attestMs: number;
  readonly isolation: string;
}

const PACKING: PackingSpec = { fractionalBits: 24, integerBits: 8, maxContributions: 16 };

function settings(runDir: string, rounds: number): ServerSettings {
  return { address: '127.0.0.1:0', numRounds: rounds, fractionFit: 1, fractionEvaluate: 0, minFitClients: 2, minEvaluateClients: 2, minAvailableClients: 2, roundTimeoutMs: 60_000, joinTimeoutMs: 60_000, evalEvery: rounds, runDir, secret: '', maxMessageBytes: 16 << 20, fitConfig: {}, seed: 1, pollWaitMs: 200 };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Round 1 includes the workers' joins; later rounds are steady state. */
const steady = (h: readonly RoundRecord[]): number => median(h.slice(1).map((r) => r.durationMs));

/**
 * Runs both federations one after the other in this process.
 *
 * @example
 * ```ts
 * const r = await runRoundOverhead({ rounds: 6, keyBits: 2048 });
 * ```
 */
export async function runRoundOverhead(o: { rounds?: number; keyBits?: 1024 | 2048 | 3072; onProgress?: (l: string) => void } = {}): Promise<RoundOverheadResult> {
  const rounds = Math.max(3, o.rounds ?? 6);
  const keyBits = o.keyBits ?? 2048;
  const server = generateIdentity('server', 'aggregator');
  const workers = [generateIdentity('worker', '1'), generateIdentity('worker', '2')];
  const roster = new Roster([server, ...workers].map(publicIdentity));
  const data = await loadCsvDataset(join(import.meta.dirname, '..', 'examples', 'data', 'breast_homo_guest.csv'));
  const base = (w: Identity, i: number): Omit<WorkerOptions, 'transport'> => ({
    workerId: w.id,
    token: '',
    client: logRegClient(shardDataset(data, i + 1, 2), { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: i + 1 }),
    trust: { identity: w, roster },
    minKeyBits: keyBits,
    pollWaitMs: 200,
  });
  const dir = await mkdtemp(join(tmpdir(), 'cipherml-bench-attest-'));
  try {
    // Baseline: Paillier FedAvg, key-holder "server".
    const pair = await generatePaillierKeyPair({ bits: keyBits });
    const vouch = { keySignature: signMessage(server, SIG_CONTEXT.keyStatement, keyStatement('server', serializePublicKey(pair.publicKey))), keySignerId: server.id };
    const plain = new FlServer({ settings: { ...settings(join(dir, 'plain'), rounds), trust: { identity: server, roster } }, strategy: new PaillierFedAvg({ kind: 'server', privateKey: pair.privateKey, vouch }, PACKING) });
    const address = await plain.listen();
    const plainRun = plain.run();
    await Promise.all(workers.map((w, i) => runWorker({ ...base(w, i), transport: createRpcTransport({ address, maxMessageBytes: 16 << 20 }) })));
    const plainSummary = await plainRun;
    await plain.close();
    o.onProgress?.(`[bench attest] plain Paillier server-key: ${rounds} rounds`);

    // The attested aggregator, simulation mode.
    const measurement = 'c3'.repeat(48);
    const agg = await EnclaveAggregator.start({ tee: 'simulation', settings: settings(join(dir, 'enclave'), rounds), trust: { identity: server, roster }, packing: PACKING, keyBits, measurement, sealingSecret: new Uint8Array(32).fill(1) });
    const policy: AttestationPolicy = { ...DEFAULT_POLICY, kind: 'simulation', measurements: [measurement], allowSimulation: true, simulationSigners: [server.fingerprint] };
    const attestTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await attestAggregator(agg.address, policy, { runId: agg.runId });
      attestTimes.push(performance.now() - t0);
    }
    const run = agg.run();
    await Promise.all(
      workers.map(async (w, i) => {
        const a = await attestAggregator(agg.address, policy, { runId: agg.runId });
        return runWorker({ ...base(w, i), transport: attestedTransport(agg.address, a, 16 << 20), attestedKey: attestedKey(a) });
      }),
    );
    const encSummary = await run;
    await agg.close();
    o.onProgress?.(`[bench attest] enclave (${SIMULATION_LABEL}): ${rounds} rounds`);
    const plainRoundMs = steady(plainSummary.history);
    const enclaveRoundMs = steady(encSummary.history);
    return {
      rounds,
      keyBits,
      baseline: 'plain Paillier FedAvg round, key-holder "server" (same key size, workers, data; loopback gRPC without TLS)',
      plainRoundMs,
      enclaveRoundMs,
      ratio: enclaveRoundMs / plainRoundMs,
      attestMs: median(attestTimes),
      isolation: SIMULATION_LABEL,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The table rows. */
export function formatRoundOverhead(r: RoundOverheadResult): string {
  return [
    `Aggregator round overhead (${r.isolation}), ${r.keyBits}-bit Paillier, median of rounds 2..${r.rounds}; baseline: ${r.baseline}`,
    `${'plain round ms'.padStart(16)}${'enclave round ms'.padStart(18)}${'ratio'.padStart(8)}${'attest ms (once per worker)'.padStart(30)}`,
    `${r.plainRoundMs.toFixed(1).padStart(16)}${r.enclaveRoundMs.toFixed(1).padStart(18)}${(r.ratio.toFixed(2) + '×').padStart(8)}${r.attestMs.toFixed(1).padStart(30)}`,
  ].join('\n');
}
