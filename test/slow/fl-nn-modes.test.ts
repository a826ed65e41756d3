import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSealingSecret, unseal } from '../../src/attest/index.ts';
import { cli, demoIdentities, freePort, waitForLine } from '../../src/demos/homo-lr.ts';
import { startThresholdParties } from '../../src/demos/homo-lr-threshold.ts';
import { measureAggregator } from '../../src/enclave/measure.ts';
import { resolveNnApp, type NnAppConfig } from '../../src/fl/apps/nn-config.ts';
import { clientData, loadNnData, nnDefaults, nnRunConfig } from '../../src/fl/apps/nn-run.ts';
import { initialModel, nnClient } from '../../src/fl/apps/nn.ts';
import { resolveRunConfig, type RunConfig } from '../../src/fl/config.ts';
import { specsOf, type NamedTensor } from '../../src/fl/protocol.ts';
import { fitConfigOf } from '../../src/fl/run.ts';
import { PlainFedAvg } from '../../src/fl/strategy.ts';
import type { FlClient } from '../../src/fl/worker.ts';
import { loadEngine } from '../../src/ml/nn/engine.ts';

// A neural network (the `cnn-he` CNN, 37,682 parameters) federated over gRPC on loopback, every
// party a separate `cipherml` process (`fl nn-server`, three `fl nn-worker`s, and the mode's own
// parties), under key-holder "threshold" (a dealer process and 2-of-3 `key-holder` processes) and
// under the attested aggregator (`fl nn-server --tee simulation`, workers with
// `--require-attestation`). After every round the test reads the server's checkpoint and checks
// the global model against plain FedAvg of the same round: the three clients' local training
// replayed in this process from the previous round's global model (same data, seed and fit
// config; the engine is deterministic), averaged by PlainFedAvg. A `--strategy plain` run of the
// same processes must equal that reference up to float64 summation order (the server adds the
// updates in arrival order), which shows the replay is the plain run.
// The encrypted modes must equal it within the fixed-point bound: each worker rounds w·θ to
// 2^-(f+1), so a sum of C updates is within C·2^-(f+1).

// Rounds of the plain and attested runs; the threshold run stops after 2 to stay within about two
// minutes on 2 shared cores (each round, three holders compute decryption shares for 857 ciphertexts).
const ROUNDS = 3;
const THRESHOLD_ROUNDS = 2;
const CLIENTS = 3;
const SEED = 5;
const FRACTIONAL_BITS = 16;
const APP = { model: 'cnn-he', partition: 'iid', 'num-clients': CLIENTS, 'train-limit': 3000, 'test-limit': 1000 } as const;
const APP_ARGS = ['--model', APP.model, '--partition', APP.partition, '--num-clients', String(CLIENTS), '--train-limit', String(APP['train-limit']), '--test-limit', String(APP['test-limit']), '--seed', String(SEED), '--learning-rate', '0.01'];
// 1024-bit keys and 4 integer bits (|w·θ| < 16) keep the 2-of-3 decryption of 37,682 values within the test's time.
const PAILLIER_ARGS = ['--strategy', 'paillier', '--key-bits', '1024', '--packing-integer-bits', '4', '--packing-fractional-bits', String(FRACTIONAL_BITS)];
const BOUND = CLIENTS * 2 ** -(FRACTIONAL_BITS + 1) + 1e-12;

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

interface Checkpoint {
  readonly round: number;
  readonly model: { readonly kind: string; readonly tensors: readonly { name: string; shape: number[]; values: string }[] };
}

function modelOf(ck: Checkpoint): NamedTensor[] {
  expect(ck.model.kind).toBe('plain');
  return ck.model.tensors.map((t) => {
    const b = Buffer.from(t.values, 'base64');
    const values = new Float64Array(b.length / 8);
    for (let i = 0; i < values.length; i++) values[i] = b.readDoubleLE(i * 8);
    return { name: t.name, shape: t.shape, values };
  });
}

function maxAbsDiff(a: readonly NamedTensor[], b: readonly NamedTensor[]): number {
  expect(a.map((t) => t.name)).toEqual(b.map((t) => t.name));
  let m = 0;
  a.forEach((t, k) => t.values.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[k]!.values[i]!)))));
  return m;
}

/** The test's replay: plain FedAvg of the clients' local training from `global` in `round`. */
interface Replay {
  fedAvg(global: readonly NamedTensor[], round: number): Promise<NamedTensor[]>;
  readonly initial: NamedTensor[];
}

async function replay(config: RunConfig, app: NnAppConfig): Promise<Replay> {
  const { tf } = await loadEngine(app.engine);
  const data = await loadNnData(app, config.seed);
  const clients: FlClient[] = data.partition.clients.map((_, i) => nnClient(tf, data.spec, clientData(data, i + 1), nnDefaults(config, app, i + 1)));
  const initial = initialModel(data.spec, config.seed);
  return {
    initial,
    async fedAvg(global, round) {
      const fits = [];
      for (const [i, c] of clients.entries()) {
        const out = await c.fit(global, { ...fitConfigOf(config), round: String(round) });
        fits.push({ workerId: String(i + 1), numExamples: out.numExamples, weight: 0, decoded: out.parameters, metrics: {} });
      }
      const agg = await new PlainFedAvg().aggregateFit(round, fits, specsOf(initial));
      if (agg.kind !== 'plain') throw new Error('PlainFedAvg returned an encrypted model');
      return agg.tensors.map((t) => ({ ...t, values: Float64Array.from(t.values) }));
    },
  };
}

interface ModeRun {
  readonly rounds: number;
  readonly summary: Record<string, unknown>;
  /** The global model after each round, read from the checkpoint when the server reported the round's end. */
  readonly models: Map<number, NamedTensor[]>;
  readonly workerLines: string[];
  /** Wall time of the whole mode: its own parties' start, the server, the workers. */
  readonly seconds: number;
  /** Each round's wall time as the server recorded it. */
  readonly roundSeconds: number[];
}

/**
 * Starts `fl nn-server` with `serverArgs`, then the three `fl nn-worker`s, waits for all of them
 * to exit and returns the server's summary and the per-round global models `readModel` read.
 */
async function runParties(o: {
  dir: string;
  ids: Awaited<ReturnType<typeof demoIdentities>>;
  serverArgs: readonly string[];
  workerArgs: (id: string) => readonly string[];
  readModel: (round: number) => NamedTensor[];
  log: string[];
  started: number;
  rounds?: number;
}): Promise<ModeRun> {
  const rounds = o.rounds ?? ROUNDS;
  const address = `127.0.0.1:${await freePort()}`;
  const models = new Map<number, NamedTensor[]>();
  const readErrors: string[] = [];
  let summary: Record<string, unknown> | null = null;
  let listening = false;
  const onLine = (l: string): void => void o.log.push(l);
  const server = cli(
    ['fl', 'nn-server', ...APP_ARGS, ...o.serverArgs, '--address', address, '--identity', o.ids.files.get('server:server')!, '--roster', o.ids.roster, '--num-server-rounds', String(rounds), '--min-available-clients', String(CLIENTS), '--min-fit-clients', String(CLIENTS), '--min-evaluate-clients', '0', '--fraction-evaluate', '0', '--join-timeout', '120', '--round-timeout', '300', '--run-dir', join(o.dir, 'run'), '--json'],
    'server',
    onLine,
    (j) => {
      o.log.push(`[server] ${JSON.stringify(j).slice(0, 400)}`);
      if (j['event'] === 'listening') listening = true;
      if (j['event'] === 'round-end') {
        const round = (j['record'] as { round: number }).round;
        // Read at once: the next checkpoint is written only after the next round's training and decryption.
        try {
          models.set(round, o.readModel(round));
        } catch (e) {
          readErrors.push(`round ${round}: ${(e as Error).message}`);
        }
      }
      if ('accuracy' in j && 'strategy' in j) summary = j;
    },
  );
  const workers: ReturnType<typeof cli>[] = [];
  const workerLines: string[] = [];
  try {
    await waitForLine(() => listening || server.child.exitCode !== null, 'server', 120_000);
    expect(listening, o.log.slice(-20).join('\n')).toBe(true);
    for (let k = 1; k <= CLIENTS; k++) {
      const id = String(k);
      workers.push(
        cli(['fl', 'nn-worker', ...APP_ARGS, '--id', id, '--server', address, '--identity', o.ids.files.get(`worker:${id}`)!, '--roster', o.ids.roster, '--insecure-min-key-bits', '1024', ...o.workerArgs(id), '--json'], `worker ${id}`, (l) => {
          workerLines.push(l);
          onLine(l);
        }, (j) => workerLines.push(`[worker ${id}] ${JSON.stringify(j)}`)),
      );
    }
    const codes = await Promise.all([server.exit, ...workers.map((w) => w.exit)]);
    expect(codes, o.log.slice(-40).join('\n')).toEqual(Array.from({ length: CLIENTS + 1 }, () => 0));
  } finally {
    for (const p of [server, ...workers]) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await Promise.all([server.exit, ...workers.map((w) => w.exit)]);
  }
  expect(readErrors).toEqual([]);
  expect(summary).not.toBeNull();
  const history = JSON.parse(await readFile(join(o.dir, 'run', 'history.json'), 'utf8')) as { rounds: { durationMs: number }[] };
  expect(history.rounds).toHaveLength(rounds);
  return { rounds, summary: summary!, models, workerLines, seconds: (performance.now() - o.started) / 1000, roundSeconds: history.rounds.map((r) => Math.round(r.durationMs / 100) / 10) };
}

/** Every round's global model against plain FedAvg of the same round; returns the largest |Δ| per round. */
async function checkAgainstPlain(r: Replay, run: ModeRun, tolerance: number): Promise<number[]> {
  const deltas: number[] = [];
  let previous = r.initial;
  for (let round = 1; round <= run.rounds; round++) {
    const got = run.models.get(round);
    expect(got, `global model of round ${round}`).toBeDefined();
    const want = await r.fedAvg(previous, round);
    const delta = maxAbsDiff(got!, want);
    deltas.push(delta);
    expect(delta, `round ${round}: max |aggregate − plain FedAvg|`).toBeLessThanOrEqual(tolerance);
    // The round moved the model by far more than the tolerance: an aggregate that kept the old model would fail.
    expect(maxAbsDiff(want, previous)).toBeGreaterThan(1000 * BOUND);
    previous = got!;
  }
  return deltas;
}

describe('a neural network through the threshold and attested aggregation modes (separate processes, gRPC)', () => {
  let reference: Replay;
  const config = resolveRunConfig({ flags: { seed: SEED, learningRate: 0.01, strategy: 'paillier', keyBits: 1024, packingIntegerBits: 4, packingFractionalBits: FRACTIONAL_BITS, minFitClients: CLIENTS, minEvaluateClients: 0, minAvailableClients: CLIENTS } });
  const app = resolveNnApp(APP);
  const measured: Record<string, unknown> = {};

  beforeAll(async () => {
    reference = await replay(config, app);
  }, 120_000);

  afterAll(() => {
    console.log(`fl-nn-modes: ${JSON.stringify(measured)}`);
  });

  it('plain FedAvg in separate processes equals the replayed reference up to float64 summation order', async () => {
    const started = performance.now();
    const dir = await mkdtemp(join(tmpdir(), 'fl-nn-plain-'));
    dirs.push(dir);
    const ids = await demoIdentities(dir, [{ role: 'server', id: 'server' }, ...Array.from({ length: CLIENTS }, (_, i) => ({ role: 'worker' as const, id: String(i + 1) }))]);
    const log: string[] = [];
    const run = await runParties({ dir, ids, serverArgs: ['--strategy', 'plain'], workerArgs: () => [], readModel: (round) => checkpointModel(join(dir, 'run'), round), log, started });
    const deltas = await checkAgainstPlain(reference, run, 1e-14);
    measured['plain'] = { seconds: run.seconds, roundSeconds: run.roundSeconds, accuracy: run.summary['accuracy'], deltas };
  }, 300_000);

  it('key-holder threshold (2-of-3 key-holder processes): every round equals plain FedAvg within C·2^-17, accuracy well above chance', async () => {
    const started = performance.now();
    const dir = await mkdtemp(join(tmpdir(), 'fl-nn-threshold-'));
    dirs.push(dir);
    const workerIds = Array.from({ length: CLIENTS }, (_, i) => String(i + 1));
    const ids = await demoIdentities(dir, [{ role: 'server', id: 'server' }, ...workerIds.map((id) => ({ role: 'worker' as const, id }))]);
    const log: string[] = [];
    const th = await startThresholdParties({
      runDir: dir,
      label: '2-of-3',
      keyBits: 1024,
      workerIds,
      minContributions: CLIENTS,
      spawnCli: (args, name, onJson) => cli(args, name, (l) => void log.push(l), onJson),
      freePort,
      onLine: (l) => void log.push(l),
      waitFor: waitForLine,
      identities: { file: (id) => ids.files.get(`worker:${id}`)!, roster: ids.roster },
    });
    let run: ModeRun;
    try {
      run = await runParties({ dir, ids, serverArgs: [...PAILLIER_ARGS, '--key-holder', 'threshold', ...th.serverArgs], workerArgs: (id) => th.workerArgs(id), readModel: (round) => checkpointModel(join(dir, 'run'), round), log, started, rounds: THRESHOLD_ROUNDS });
    } finally {
      for (const c of th.children) if (c.child.exitCode === null) c.child.kill('SIGTERM');
      await Promise.all(th.children.map((c) => c.exit));
    }
    expect(run.summary).toMatchObject({ strategy: 'paillier', keyHolder: 'threshold', rounds: THRESHOLD_ROUNDS, model: 'cnn-he' });
    // Each round was decrypted by the holders: k = 2 shares combined, none rejected.
    const history = JSON.parse(await readFile(join(dir, 'run', 'history.json'), 'utf8')) as { rounds: { secagg?: { threshold?: { used: number[]; rejected: number[] } } }[] };
    for (const r of history.rounds) {
      expect(r.secagg?.threshold?.used.length).toBeGreaterThanOrEqual(2);
      expect(r.secagg?.threshold?.rejected).toEqual([]);
    }
    expect(log.some((l) => l.includes(`decrypted round ${THRESHOLD_ROUNDS}: decryption shares of the product of ${CLIENTS} signed contributions`)), log.filter((l) => l.includes('holder')).slice(-10).join('\n')).toBe(true);
    const deltas = await checkAgainstPlain(reference, run, BOUND);
    expect(run.summary['accuracy'] as number).toBeGreaterThan(0.5);
    measured['threshold'] = { seconds: run.seconds, roundSeconds: run.roundSeconds, accuracy: run.summary['accuracy'], deltas, bound: BOUND };
  }, 600_000);

  it('attested aggregator (--tee simulation, workers --require-attestation): every round equals plain FedAvg within C·2^-17, accuracy well above chance', async () => {
    const started = performance.now();
    const dir = await mkdtemp(join(tmpdir(), 'fl-nn-tee-'));
    dirs.push(dir);
    const ids = await demoIdentities(dir, [{ role: 'server', id: 'server' }, ...Array.from({ length: CLIENTS }, (_, i) => ({ role: 'worker' as const, id: String(i + 1) }))]);
    // The measurement the workers' policy pins, computed here from the same settings the server gets.
    const { measurement } = await measureAggregator('simulation', nnRunConfig(config, app));
    const policy = join(dir, 'attestation-policy.toml');
    await writeFile(policy, `kind = "simulation"\nmeasurement = "${measurement}"\nallow-simulation = true\nsimulation-signers = ["${ids.fingerprints.get('server:server')!}"]\n`);
    const runDir = join(dir, 'run');
    const log: string[] = [];
    // In simulation the operator can unseal the aggregator's state (docs/enclave.md): that is how the test reads the checkpoint.
    const secretPath = join(dir, 'simulation.sealing-secret');
    const secret = await createSealingSecret(secretPath);
    const readSealed = (round: number): NamedTensor[] => {
      const state = JSON.parse(Buffer.from(unseal(readFileSync(join(runDir, 'enclave.sealed')), measurement, secret)).toString('utf8')) as { checkpoint: string | null };
      return checkedRound(JSON.parse(state.checkpoint ?? 'null') as Checkpoint, round);
    };
    const run = await runParties({ dir, ids, serverArgs: [...PAILLIER_ARGS, '--tee', 'simulation', '--sealing-secret', secretPath], workerArgs: () => ['--require-attestation', policy], readModel: readSealed, log, started });
    expect(run.summary).toMatchObject({ strategy: 'paillier', keyHolder: 'enclave (simulation: no hardware isolation)', rounds: ROUNDS, model: 'cnn-he', isolation: 'simulation: no hardware isolation' });
    expect(log.find((l) => l.includes('"event":"measurement"'))).toContain(measurement);
    for (let k = 1; k <= CLIENTS; k++) expect(run.workerLines.some((l) => l.startsWith(`[worker ${k}]`) && l.includes('"event":"attestation"') && l.includes('simulation'))).toBe(true);
    // Nothing but the sealed state holds the model: no plaintext checkpoint in the run folder.
    await expect(readFile(join(runDir, 'checkpoint.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    const deltas = await checkAgainstPlain(reference, run, BOUND);
    expect(run.summary['accuracy'] as number).toBeGreaterThan(0.5);
    measured['tee-simulation'] = { seconds: run.seconds, roundSeconds: run.roundSeconds, accuracy: run.summary['accuracy'], deltas, bound: BOUND };
  }, 600_000);
});

function checkedRound(ck: Checkpoint | null, round: number): NamedTensor[] {
  if (ck === null) throw new Error('no checkpoint yet');
  if (ck.round !== round) throw new Error(`the checkpoint is already at round ${ck.round}, expected ${round}`);
  return modelOf(ck);
}

function checkpointModel(runDir: string, round: number): NamedTensor[] {
  return checkedRound(JSON.parse(readFileSync(join(runDir, 'checkpoint.json'), 'utf8')) as Checkpoint, round);
}
