import { availableParallelism } from 'node:os';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { FitResultSchema, ModelPayloadSchema, SecAggStageResultSchema, SecAggStageTaskSchema, type SecAggStageResult, type SecAggStageTask, type TensorSpec } from '../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { clientData, loadNnData, nnDefaults, nnRunConfig } from '../src/fl/apps/nn-run.ts';
import { initialModel, nnClient } from '../src/fl/apps/nn.ts';
import { resolveNnApp } from '../src/fl/apps/nn-config.ts';
import { resolveRunConfig, type RunConfig } from '../src/fl/config.ts';
import { fitConfigOf, packingFor, secAggSettings } from '../src/fl/run.ts';
import { specsOf, tensorsFromWire, tensorsToWire, type NamedTensor } from '../src/fl/protocol.ts';
import { SecAggFedAvg, advertiseKeys, answerStage, beginWorkerRound, type SecAggWorkerRound } from '../src/fl/secagg.ts';
import { PaillierFedAvg, PlainFedAvg, weightedFlat, type FitOutcome, type StageRunner, type Strategy } from '../src/fl/strategy.ts';
import { subset } from '../src/ml/idx.ts';
import { loadEngine } from '../src/ml/nn/engine.ts';
import { PackedCiphertext, PackingLayout, decryptVector, encryptVector, generatePaillierKeyPair, precomputeRandomizers, serializePacked, type PackingSpec, type PaillierKeyPair, type RandomizerStock } from '../src/paillier/index.ts';
import { collectGarbage } from './secagg.ts';

/**
 * One federated LeNet-5 round per strategy, each party charged only its own work (the project's
 * benchmark rule). On separate machines the clients work in parallel, so a round takes
 *
 *   max over clients of (own local training + own encryption / masking) + the server's work
 *
 * and, for secure aggregation, the slowest client of every later stage plus the server's work
 * closing it. Every party's step runs here alone in the process, one after the other, through the
 * runtime's own code (nnClient.fit, encryptVector, PaillierFedAvg / SecAggFedAvg / PlainFedAvg,
 * beginWorkerRound / answerStage, every message protobuf-encoded and decoded), and is measured by
 * the process's CPU time (all threads: the Paillier worker pool included) — the time on one core
 * of an otherwise idle machine — and by its wall time alone. The local training is the same for
 * every strategy (same data, model and seed): it is measured once and charged to each.
 *
 * Not charged: key generation and the DJN fixed-base table (once per run and key, before the
 * first round), and the randomizers a worker precomputes while it waits (reported apart: they do
 * not depend on the update and are off the round's critical path).
 */

/**
 * CPU and wall milliseconds of one party's step, measured alone; `mainCpuMs` is the part of
 * `cpuMs` on the calling thread (the rest ran on worker threads: the Paillier pools, V8's helpers).
 */
export interface Cost {
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly mainCpuMs: number;
}

/** Cores a party would give its worker threads in the "own cores" account (this machine's count). */
export const PARTY_CORES: number = availableParallelism();

/**
 * The step's critical path with its worker threads on `cores` cores of their own: the calling
 * thread's CPU plus the other threads' CPU split evenly (the pools cut their work into equal
 * chunks, several per thread). An account from measured CPU, not a measured wall time.
 */
export function onCores(c: Cost, cores: number = PARTY_CORES): number {
  return c.mainCpuMs + (c.cpuMs - c.mainCpuMs) / cores;
}

const ZERO: Cost = { cpuMs: 0, wallMs: 0, mainCpuMs: 0 };
const plus = (a: Cost, b: Cost): Cost => ({ cpuMs: a.cpuMs + b.cpuMs, wallMs: a.wallMs + b.wallMs, mainCpuMs: a.mainCpuMs + b.mainCpuMs });
const minus = (a: Cost, b: Cost): Cost => ({ cpuMs: a.cpuMs - b.cpuMs, wallMs: a.wallMs - b.wallMs, mainCpuMs: a.mainCpuMs - b.mainCpuMs });
const maxOf = (xs: readonly Cost[]): Cost => ({ cpuMs: Math.max(...xs.map((x) => x.cpuMs)), wallMs: Math.max(...xs.map((x) => x.wallMs)), mainCpuMs: Math.max(...xs.map((x) => x.mainCpuMs)) });

/** Runs `f` alone and measures it; first collects the heap (untimed unless `gc` is false: then the caller times it). */
async function measure<T>(f: () => T | Promise<T>, gc = true): Promise<{ value: T; cost: Cost }> {
  if (gc) collectGarbage();
  const c0 = process.cpuUsage();
  const m0 = process.threadCpuUsage();
  const t0 = performance.now();
  const value = await f();
  const wallMs = performance.now() - t0;
  const m = process.threadCpuUsage(m0);
  const c = process.cpuUsage(c0);
  return { value, cost: { cpuMs: (c.user + c.system) / 1000, wallMs, mainCpuMs: (m.user + m.system) / 1000 } };
}

/** One strategy's round, per party. */
export interface RoundAccount {
  readonly strategy: string;
  /** Slowest client's local training + its own step(s) (CPU / wall). */
  readonly clientPath: Cost;
  /** The server's work in the round (decoding, aggregation, decryption or unmasking). */
  readonly server: Cost;
  /** The round on separate machines: clientPath + server. */
  readonly round: Cost;
  /** The slowest client's encryption / encoding / masking alone (without training). */
  readonly clientCryptoMax: Cost;
  /** Randomizers precomputed by the slowest precomputing client while it waits (off the critical path). */
  readonly offPath: Cost;
  readonly bytesPerClient: number;
  /** round.cpuMs / plain round.cpuMs of the same run. */
  readonly vsPlainCpu: number;
  readonly vsPlainWall: number;
  /** The server's critical path with its worker threads on PARTY_CORES cores of its own ({@link onCores}), ms. */
  readonly serverOnCoresMs: number;
  /** (clientPath.cpuMs + serverOnCoresMs) / the same for plain: clients on one core each, the server on PARTY_CORES. */
  readonly vsPlainServerCores: number;
  /** Key holder server, the runtime's settings only: the server's work in parts (measured again, alone). */
  readonly serverParts?: ServerParts;
  /** max |aggregate − plain FedAvg aggregate| of the same trained models. */
  readonly maxAbsError: number;
  readonly note: string;
}

/** The key-holder server's work in a Paillier round, part by part. */
export interface ServerParts {
  /** Decoding and checking every update (protobuf, ciphertexts in Z*_{n²}). */
  readonly decode: Cost;
  /** The homomorphic sum: one product mod n² per ciphertext per further update. */
  readonly sum: Cost;
  /** CRT decryption of the sum on the key holder's own threads (keyHolderPool). */
  readonly decrypt: Cost;
  /** The same decryption on the calling thread alone (parallelism 0). */
  readonly decryptOneThread: Cost;
}

export interface RoundBenchOptions {
  readonly clients: number;
  /** Training images partitioned among the clients (0: all 60,000). */
  readonly trainLimit: number;
  /** Cap on the images a client trains in the round (0: its whole partition, one epoch). */
  readonly roundImages: number;
  readonly partition: string;
  readonly keyBits: 1024 | 2048 | 3072 | 4096;
  readonly log: (line: string) => void;
}

export interface RoundBenchResult {
  readonly partitionSizes: readonly number[];
  readonly trainedImages: readonly number[];
  /** Local training per client, one epoch on its (capped) data (CPU / wall). */
  readonly training: readonly Cost[];
  /** CPU ms per image of the slowest client's training (for the projection). */
  readonly trainCpuMsPerImage: number;
  readonly parameters: number;
  readonly packing: { readonly before: ReturnType<PackingLayout['toJSON']> & { ciphertexts: number }; readonly after: ReturnType<PackingLayout['toJSON']> & { ciphertexts: number } };
  readonly rounds: readonly RoundAccount[];
  /** Worker threads a party's pool runs (this machine's cores). */
  readonly partyCores: number;
  /** Largest |w·θ| a client encrypted (what packing-integer-bits must cover). */
  readonly maxAbsWeightedValue: number;
}

interface Trained {
  readonly id: string;
  readonly parameters: readonly NamedTensor[];
  readonly numExamples: number;
  readonly weight: number;
  readonly training: Cost;
}

function maxDiff(a: readonly NamedTensor[], b: readonly NamedTensor[]): number {
  let m = 0;
  a.forEach((t, j) => t.values.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[j]!.values[i]!)))));
  return m;
}

function configOf(strategy: 'plain' | 'paillier' | 'secagg', o: RoundBenchOptions, packingMaxContributions: number): RunConfig {
  return resolveRunConfig({
    flags: { strategy, numServerRounds: 1, minFitClients: o.clients, minAvailableClients: o.clients, keyBits: o.keyBits, packingMaxContributions, localEpochs: 1, batchSize: 32, learningRate: 0.01, seed: 42, cipherTimeWindow: 600_000 },
  });
}

/** The global model as the server sends it and a client decodes it (charged to each side). */
async function distribute(global: readonly NamedTensor[]): Promise<{ wire: Uint8Array; server: Cost; client: Cost }> {
  const s = await measure(() => toBinary(ModelPayloadSchema, create(ModelPayloadSchema, { kind: { case: 'plain', value: { tensors: tensorsToWire(global) } } })));
  const c = await measure(() => {
    const p = fromBinary(ModelPayloadSchema, s.value);
    return p.kind.case === 'plain' ? tensorsFromWire(p.kind.value.tensors, 'model') : [];
  });
  return { wire: s.value, server: s.cost, client: c.cost };
}

/** Plain FedAvg or Paillier FedAvg: one answer per client, then the server's aggregation. */
async function singleShotRound(
  strategy: Strategy,
  trained: readonly Trained[],
  specs: TensorSpec[],
  encode: (t: Trained) => Promise<Uint8Array>,
  dist: { server: Cost; client: Cost },
): Promise<{ clientPath: Cost; clientCryptoMax: Cost; server: Cost; bytes: number; model: readonly NamedTensor[] }> {
  const wires: Uint8Array[] = [];
  const paths: Cost[] = [];
  const cryptos: Cost[] = [];
  for (const t of trained) {
    const { value, cost } = await measure(() => encode(t));
    wires.push(value);
    cryptos.push(cost);
    paths.push(plus(plus(dist.client, t.training), cost));
  }
  const { value: model, cost } = await measure(async () => {
    const outcomes: FitOutcome[] = trained.map((t, k) => ({ workerId: t.id, numExamples: t.numExamples, weight: t.weight, decoded: strategy.checkFitResult(fromBinary(FitResultSchema, wires[k]!), specs, `result from ${t.id}`), metrics: {} }));
    const g = await strategy.aggregateFit(1, outcomes, specs);
    return strategy.plaintext(g) ?? [];
  });
  return { clientPath: maxOf(paths), clientCryptoMax: maxOf(cryptos), server: plus(dist.server, cost), bytes: wires.reduce((a, w) => a + w.length, 0) / wires.length, model };
}

function fitResultBytes(init: MessageInitShape<typeof FitResultSchema>): Uint8Array {
  return toBinary(FitResultSchema, create(FitResultSchema, init));
}

async function paillierRound(
  label: string,
  pair: PaillierKeyPair,
  packing: PackingSpec,
  precompute: boolean,
  trained: readonly Trained[],
  specs: TensorSpec[],
  dist: { server: Cost; client: Cost },
  log: (l: string) => void,
  parts = false,
): Promise<{ clientPath: Cost; clientCryptoMax: Cost; server: Cost; bytes: number; model: readonly NamedTensor[]; offPath: Cost; serverParts?: ServerParts }> {
  const strategy = new PaillierFedAvg({ kind: 'server', privateKey: pair.privateKey }, packing);
  const layout = PackingLayout.forKey(pair.publicKey, packing);
  const length = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  // Each client's randomizers, precomputed while it waits (its own; a randomizer is used once).
  const stocks = new Map<string, RandomizerStock>();
  const pre: Cost[] = [];
  if (precompute) {
    for (const t of trained) {
      const { value, cost } = await measure(() => precomputeRandomizers(pair.publicKey, layout.ciphertextsFor(length)));
      stocks.set(t.id, value);
      pre.push(cost);
    }
  }
  const wires: Uint8Array[] = [];
  const r = await singleShotRound(
    strategy,
    trained,
    specs,
    async (t) => {
      const stock = stocks.get(t.id);
      const enc = await encryptVector(pair.publicKey, weightedFlat(t.parameters, t.weight), { packing, ...(stock === undefined ? {} : { randomizers: stock }) });
      const wire = fitResultBytes({ model: { kind: { case: 'encrypted', value: { packed: serializePacked(enc), specs, weightTotal: t.weight } } }, numExamples: BigInt(t.numExamples) });
      wires.push(wire);
      return wire;
    },
    dist,
  );
  log(`  ${label}: slowest client ${(r.clientPath.cpuMs / 1000).toFixed(1)} s CPU (encryption ${(r.clientCryptoMax.cpuMs / 1000).toFixed(2)} s), server ${(r.server.cpuMs / 1000).toFixed(1)} s CPU (${(onCores(r.server) / 1000).toFixed(1)} s on ${PARTY_CORES} cores of its own)`);
  if (!parts) return { ...r, offPath: pre.length === 0 ? ZERO : maxOf(pre) };
  // The same server work again, part by part (aggregateFit runs the sum and the decryption together).
  const decode = await measure(() => wires.map((w, k) => strategy.checkFitResult(fromBinary(FitResultSchema, w), specs, `result from ${trained[k]!.id}`) as PackedCiphertext));
  const sum = await measure(() => PackedCiphertext.sum(decode.value));
  const decrypt = await measure(() => decryptVector(pair.privateKey, sum.value));
  const decryptOneThread = await measure(() => decryptVector(pair.privateKey, sum.value, { parallelism: 0 }));
  const ms = (c: Cost): string => `${c.cpuMs.toFixed(0)} ms CPU (${c.mainCpuMs.toFixed(0)} on the main thread)`;
  log(`  server parts: decode ${ms(decode.cost)}, sum ${ms(sum.cost)}, decryption ${ms(decrypt.cost)} / ${decryptOneThread.cost.cpuMs.toFixed(0)} ms on one thread`);
  return { ...r, offPath: pre.length === 0 ? ZERO : maxOf(pre), serverParts: { decode: decode.cost, sum: sum.cost, decrypt: decrypt.cost, decryptOneThread: decryptOneThread.cost } };
}

async function secaggRound(config: RunConfig, trained: readonly Trained[], specs: TensorSpec[], dist: { server: Cost; client: Cost }, log: (l: string) => void): Promise<{ clientPath: Cost; clientCryptoMax: Cost; server: Cost; bytes: number; model: readonly NamedTensor[] }> {
  const strategy = new SecAggFedAvg(secAggSettings(config));
  const roundId = 'bench-fl-cnn-r1';
  const b = await measure(() => strategy.beginFit(roundId, trained.length, specs));
  const round = b.value;
  let server = plus(dist.server, b.cost);
  const states = new Map<string, SecAggWorkerRound>();
  const sent = new Map<string, number>();
  const stage0: Cost[] = [];
  const outcomes: FitOutcome[] = [];
  for (const t of trained) {
    const c = await measure(() => {
      const state = beginWorkerRound(round, t.id, t.parameters, t.weight);
      return { state, wire: fitResultBytes({ numExamples: BigInt(t.numExamples), metrics: { clipped: state.clipped }, secaggKeys: advertiseKeys(state) }) };
    });
    states.set(t.id, c.value.state);
    sent.set(t.id, c.value.wire.length);
    stage0.push(c.cost);
    const s = await measure(() => strategy.checkFitResult(fromBinary(FitResultSchema, c.value.wire), specs, `result from ${t.id}`));
    server = plus(server, s.cost);
    outcomes.push({ workerId: t.id, numExamples: t.numExamples, weight: t.weight, decoded: s.value, metrics: {} });
  }
  let clientPath = maxOf(trained.map((t, k) => plus(plus(dist.client, t.training), stage0[k]!)));
  let cryptoPath = maxOf(stage0);
  let inside = ZERO;
  const runner: StageRunner = {
    roundId,
    run: async (stage: string, tasks: ReadonlyMap<string, SecAggStageTask>, _timeoutMs: number, accept: (id: string, r: SecAggStageResult) => void) => {
      const costs: Cost[] = [];
      const answered = new Set<string>();
      const wires = new Map<SecAggStageTask, Uint8Array>();
      for (const [id, task] of tasks) {
        let taskWire = wires.get(task);
        if (taskWire === undefined) wires.set(task, (taskWire = toBinary(SecAggStageTaskSchema, task)));
        // Collecting the heap before a client's step is bookkeeping, not the server's work.
        const g = await measure(collectGarbage, false);
        inside = plus(inside, g.cost);
        const { value, cost } = await measure(() => toBinary(SecAggStageResultSchema, answerStage(states.get(id)!, fromBinary(SecAggStageTaskSchema, taskWire)).result), false);
        costs.push(cost);
        inside = plus(inside, cost);
        sent.set(id, sent.get(id)! + value.length);
        accept(id, fromBinary(SecAggStageResultSchema, value));
        answered.add(id);
      }
      const g = await measure(collectGarbage, false);
      inside = plus(inside, g.cost);
      const slowest = maxOf(costs);
      clientPath = plus(clientPath, slowest);
      cryptoPath = plus(cryptoPath, slowest);
      log(`  secagg: stage ${stage} (${answered.size} clients), slowest ${slowest.cpuMs.toFixed(0)} ms CPU`);
      return answered;
    },
    report: () => undefined,
  };
  const a = await measure(async () => strategy.plaintext(await strategy.aggregateFit(1, outcomes, specs, runner)) ?? []);
  // The clients' steps ran inside aggregateFit; the rest of it is the server's.
  server = plus(server, minus(a.cost, inside));
  return { clientPath, clientCryptoMax: cryptoPath, server, bytes: [...sent.values()].reduce((x, y) => x + y, 0) / sent.size, model: a.value };
}

/**
 * Trains the clients once, then runs one round per strategy with per-party accounting.
 *
 * @example
 * ```ts
 * const r = await runRoundBench({ clients: 10, trainLimit: 0, roundImages: 1000, partition: 'dirichlet:0.5', keyBits: 2048, log: console.error });
 * ```
 */
export async function runRoundBench(o: RoundBenchOptions): Promise<RoundBenchResult> {
  const app = resolveNnApp({ partition: o.partition, 'num-clients': o.clients, 'train-limit': o.trainLimit, 'test-limit': 100 });
  const base = nnRunConfig(configOf('plain', o, 0), app);
  const { tf } = await loadEngine(app.engine);
  const data = await loadNnData(app, base.seed);
  const global = initialModel(data.spec, base.seed);
  const specs = specsOf(global);
  const parameters = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  const sizes = data.partition.clients.map((c) => c.indices.length);
  const dist = await distribute(global);
  const trained: Trained[] = [];
  const counts = sizes.map((n) => (o.roundImages === 0 ? n : Math.min(n, o.roundImages)));
  const total = counts.reduce((a, b) => a + b, 0);
  for (let k = 1; k <= o.clients; k++) {
    const full = clientData(data, k);
    const mine = counts[k - 1] === full.count ? full : subset(full, Array.from({ length: counts[k - 1]! }, (_, i) => i));
    const client = nnClient(tf, data.spec, mine, nnDefaults(base, app, k));
    const { value, cost } = await measure(() => client.fit(global, { ...fitConfigOf(base), round: '1' }));
    trained.push({ id: String(k), parameters: value.parameters, numExamples: value.numExamples, weight: value.numExamples / total, training: cost });
    o.log(`  client ${k}: ${mine.count} images trained in ${(cost.cpuMs / 1000).toFixed(1)} s CPU (${(cost.wallMs / 1000).toFixed(1)} s wall)`);
  }
  const slowest = trained.reduce((a, t) => (t.training.cpuMs > a.training.cpuMs ? t : a));
  const rounds: (Omit<RoundAccount, 'vsPlainCpu' | 'vsPlainWall' | 'maxAbsError' | 'round' | 'serverOnCoresMs' | 'vsPlainServerCores'> & { model: readonly NamedTensor[] })[] = [];

  o.log('plain FedAvg …');
  const plain = await singleShotRound(new PlainFedAvg(), trained, specs, async (t) => fitResultBytes({ model: { kind: { case: 'plain', value: { tensors: tensorsToWire(t.parameters) } } }, numExamples: BigInt(t.numExamples) }), dist);
  rounds.push({ strategy: 'plain', ...plain, offPath: ZERO, bytesPerClient: plain.bytes, note: 'baseline' });

  o.log('Paillier FedAvg (key holder server) …');
  const pair = await generatePaillierKeyPair({ bits: o.keyBits });
  const before = packingFor(configOf('paillier', o, 0));
  const after = packingFor(nnRunConfig(configOf('paillier', o, 0), app));
  // Per-run set-up, not per-round work: the DJN fixed-base table of the key in every pool worker,
  // and the key holder's own decryption threads started with its key.
  const warm = await encryptVector(pair.publicKey, new Float64Array(parameters), { packing: after });
  await decryptVector(pair.privateKey, warm);
  const variants = [
    { strategy: 'paillier (1,000-contribution headroom, fresh randomizers: before)', packing: before, precompute: false },
    { strategy: `paillier (headroom ${after.maxContributions}, fresh randomizers)`, packing: after, precompute: false },
    { strategy: `paillier (headroom ${after.maxContributions}, precomputed randomizers: the runtime's)`, packing: after, precompute: true, parts: true },
    // Not a default: packing-integer-bits = 5 (|w·θ| < 32, checked at encryption) as a run would set it.
    { strategy: `paillier (headroom ${after.maxContributions}, precomputed, packing-integer-bits 5)`, packing: { ...after, integerBits: 5 }, precompute: true },
  ];
  for (const v of variants) {
    const r = await paillierRound(v.strategy, pair, v.packing, v.precompute, trained, specs, dist, o.log, 'parts' in v);
    rounds.push({ strategy: v.strategy, ...r, bytesPerClient: r.bytes, note: `${PackingLayout.forKey(pair.publicKey, v.packing).ciphertextsFor(parameters)} ciphertexts per update` });
  }

  o.log('secure aggregation …');
  const sa = configOf('secagg', o, 0);
  const s = await secaggRound(sa, trained, specs, dist, o.log);
  rounds.push({ strategy: `secagg (${secAggSettings(sa).mode})`, ...s, offPath: ZERO, bytesPerClient: s.bytes, note: 'all stages, no dropout' });

  const p = plus(plain.clientPath, plain.server);
  const layoutOf = (spec: PackingSpec) => {
    const l = PackingLayout.forKey(pair.publicKey, spec);
    return { ...l.toJSON(), ciphertexts: l.ciphertextsFor(parameters) };
  };
  return {
    partitionSizes: sizes,
    trainedImages: counts,
    training: trained.map((t) => t.training),
    trainCpuMsPerImage: slowest.training.cpuMs / slowest.numExamples,
    parameters,
    packing: { before: layoutOf(before), after: layoutOf(after) },
    maxAbsWeightedValue: Math.max(...trained.map((t) => weightedFlat(t.parameters, t.weight).reduce((m, v) => Math.max(m, Math.abs(v)), 0))),
    partyCores: PARTY_CORES,
    rounds: rounds.map(({ model, ...r }) => {
      const round = plus(r.clientPath, r.server);
      const serverOnCoresMs = onCores(r.server);
      return {
        ...r,
        round,
        vsPlainCpu: round.cpuMs / p.cpuMs,
        vsPlainWall: round.wallMs / p.wallMs,
        serverOnCoresMs,
        vsPlainServerCores: (r.clientPath.cpuMs + serverOnCoresMs) / (plain.clientPath.cpuMs + onCores(plain.server)),
        maxAbsError: maxDiff(model, rounds[0]!.model),
      };
    }),
  };
}

/**
 * The round ratio at `images` per client, projected from the measured parts: the slowest client's
 * training CPU per image × images, plus each strategy's measured fixed costs (the client's
 * crypto and the server's work), over the same for plain.
 */
export function projectRatio(r: RoundBenchResult, strategyIndex: number, images: number): number {
  const fixed = (a: RoundAccount) => a.round.cpuMs - maxTrainingCpu(r);
  const train = r.trainCpuMsPerImage * images;
  return (train + fixed(r.rounds[strategyIndex]!)) / (train + fixed(r.rounds[0]!));
}

function maxTrainingCpu(r: RoundBenchResult): number {
  return Math.max(...r.training.map((t) => t.cpuMs));
}
