import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { Interceptor } from '@connectrpc/connect';
import { CipherMLError } from '../src/core/errors.ts';
import { FederatedService, PushResultRequestSchema, type FitResult, type ModelPayload, type PushResultRequest, type TensorSpec } from '../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { deriveToken, specsOf, type NamedTensor } from '../src/fl/protocol.ts';
import { FlServer, type ServerEvent, type ServerSettings } from '../src/fl/server.ts';
import { PaillierFedAvg, PlainFedAvg, type FitOutcome, type GlobalModel, type Strategy, type StrategyInfo } from '../src/fl/strategy.ts';
import { keySizeFor } from '../src/fl/key-pinning.ts';
import { createRpcTransport } from '../src/fl/transport.ts';
import { runWorker, type FlClient, type WorkerSummary } from '../src/fl/worker.ts';
import {
  PackedCiphertext,
  PackingLayout,
  decryptVector,
  deserializePacked,
  encryptVector,
  generatePaillierKeyPair,
  serializePacked,
  sharedPaillierPool,
  type PackingSpec,
  type PaillierKeyPair,
} from '../src/paillier/index.ts';

/**
 * Federated-round benchmark: one FedAvg round's aggregation path (workers encrypt and send, the
 * server checks, sums and decrypts) over real gRPC on loopback, in plain and in Paillier mode, in
 * one run, against the Paillier engine alone doing the same arithmetic in the same process (no RPC,
 * no serialization). Server and workers share this process and its Paillier worker pool, as in
 * `cipherml fl simulate`, but talk over HTTP/2 sockets like separate processes would.
 *
 * Round time is the server's own measure (`round-end` → `record.durationMs`: fit tasks sent →
 * aggregate done). Every figure is a median over `runs` repetitions, wall-clock on this machine.
 */

export interface FlBenchOptions {
  /** Model parameters per worker (one tensor; default 100,000). */
  readonly params?: number;
  /** Workers (default 10). */
  readonly clients?: number;
  readonly keyBits?: number;
  /** Repetitions of each measurement; medians are reported (default 3). */
  readonly runs?: number;
  readonly onProgress?: (line: string) => void;
}

/** Where a Paillier round's time goes, in ms from the server's round start (one run: the median one). */
export interface FlRoundTimeline {
  /** First / last worker has its fit task (global model decoded; fit returns at once). */
  readonly firstFitMs: number;
  readonly lastFitMs: number;
  /** Last worker has encrypted and serialized its update and starts its PushResult call. */
  readonly lastPushSentMs: number;
  /** Last PushResult reaches the server's handler (gRPC encode, HTTP/2, decode done). */
  readonly lastPushArrivedMs: number;
  /** Strategy.aggregateFit (sum + decrypt) runs from … to …. */
  readonly aggregateStartMs: number;
  readonly aggregateEndMs: number;
  readonly durationMs: number;
  /** Mean per worker of fit task received → PushResult started (encrypt + serializePacked, sharing the pool). */
  readonly encodeMsPerClient: number;
  /** Mean per worker of PushResult started → reached the server's handler. */
  readonly sendMsPerClient: number;
  /** Total server main-thread time in Strategy.checkFitResult (deserializePacked, Z*_{n²} checks). */
  readonly checkMsTotal: number;
  /** Total main-thread time of this benchmark's byte-counting interceptor (toBinary), inside the round. */
  readonly measureMsTotal: number;
}

/** One client's update processed step by step on the main thread, outside any round. */
export interface FlPerClientCosts {
  /** serializePacked of one encrypted update. */
  readonly serializePackedMs: number;
  /** deserializePacked of it, as checkFitResult calls it (includes the Z*_{n²} checks). */
  readonly deserializePackedMs: number;
  /** Of which: publicKey.assertCiphertext (range + gcd with n) over all its ciphertexts. */
  readonly assertCiphertextMs: number;
  /** Protobuf encode / decode of the PushResultRequest carrying it. */
  readonly protobufEncodeMs: number;
  readonly protobufDecodeMs: number;
}

export interface FlBenchResult {
  readonly params: number;
  readonly clients: number;
  readonly keyBits: number;
  readonly backend: string;
  readonly cores: number;
  readonly poolSize: number;
  readonly runs: number;
  readonly keygenMs: number;
  readonly plainRoundMs: number;
  readonly paillierRoundMs: number;
  readonly engineMs: number;
  readonly overheadRatio: number;
  readonly bytesPerClient: number;
  readonly ciphertextBytesPerClient: number;
  readonly bytesRatio: number;
  readonly targets: { readonly overheadRatio: 1.5; readonly bytesRatio: 1.1 };
  readonly plainBytesPerClient: number;
  readonly ciphertextsPerClient: number;
  readonly valuesPerCiphertext: number;
  readonly engine: { readonly encryptMs: number; readonly sumMs: number; readonly decryptMs: number; readonly maxAbsError: number };
  readonly paillierRound: FlRoundTimeline & { readonly maxAbsError: number };
  readonly perClient: FlPerClientCosts;
}

/** The packing of the benchmarked Paillier strategy (the CLI's default run config). */
const PACKING: PackingSpec = { fractionalBits: 16, integerBits: 15, maxContributions: 1000 };
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
const TENSOR = 'w';

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Median milliseconds of `runs` calls of f (synchronous, main thread). */
function timeEach(runs: number, f: () => unknown): number {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    f();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** A strategy wrapper that times the server-side work of another. */
class TimedStrategy implements Strategy {
  readonly inner: Strategy;
  checkMs = 0;
  aggregateStart = 0;
  aggregateEnd = 0;

  constructor(inner: Strategy) {
    this.inner = inner;
  }

  get name(): string {
    return this.inner.name;
  }

  get keyHolder(): string {
    return this.inner.keyHolder;
  }

  setup(): Promise<StrategyInfo> {
    return this.inner.setup();
  }

  payload(model: GlobalModel): ModelPayload {
    return this.inner.payload(model);
  }

  checkFitResult(result: FitResult, specs: readonly TensorSpec[], param: string): unknown {
    const t = performance.now();
    try {
      return this.inner.checkFitResult(result, specs, param);
    } finally {
      this.checkMs += performance.now() - t;
    }
  }

  async aggregateFit(round: number, results: readonly FitOutcome[], specs: readonly TensorSpec[]): Promise<GlobalModel> {
    this.aggregateStart = performance.now();
    try {
      return await this.inner.aggregateFit(round, results, specs);
    } finally {
      this.aggregateEnd = performance.now();
    }
  }

  plaintext(model: GlobalModel): readonly NamedTensor[] | null {
    return this.inner.plaintext(model);
  }
}

/** The PushResultRequest of a fit result, if this RPC carries one. */
function fitPush(req: Parameters<ReturnType<Interceptor>>[0]): PushResultRequest | null {
  if (req.stream || req.method.name !== FederatedService.method.pushResult.name) return null;
  const message = req.message as PushResultRequest;
  return message.body.case === 'fit' ? message : null;
}

interface RoundMeasure {
  readonly durationMs: number;
  readonly pushBytes: readonly number[];
  readonly model: readonly NamedTensor[];
  readonly timeline: FlRoundTimeline;
}

/** One FedAvg round over loopback gRPC with `vectors.length` in-process workers. */
async function runRound(strategy: Strategy, vectors: readonly Float64Array[], keyBits: number, onProgress: (line: string) => void): Promise<RoundMeasure> {
  const clients = vectors.length;
  const timed = new TimedStrategy(strategy);
  const pushBytes: number[] = [];
  const arrived: number[] = [];
  let measureMs = 0;
  const countBytes: Interceptor = (next) => async (req) => {
    const push = fitPush(req);
    if (push !== null) {
      arrived.push(performance.now());
      const t = performance.now();
      pushBytes.push(toBinary(PushResultRequestSchema, push).length);
      measureMs += performance.now() - t;
    }
    return await next(req);
  };
  let roundStart = 0;
  let durationMs = Number.NaN;
  const onEvent = (e: ServerEvent): void => {
    if (e.type === 'round-start') roundStart = performance.now();
    if (e.type === 'round-end') durationMs = e.record.durationMs;
  };

  const runDir = await mkdtemp(join(tmpdir(), 'cipherml-bench-fl-'));
  const settings: ServerSettings = {
    address: '127.0.0.1:0',
    numRounds: 1,
    fractionFit: 1,
    fractionEvaluate: 0,
    minFitClients: clients,
    minEvaluateClients: 0,
    minAvailableClients: clients,
    roundTimeoutMs: 3_600_000,
    joinTimeoutMs: 120_000,
    evalEvery: 1,
    runDir,
    secret: '',
    maxMessageBytes: MAX_MESSAGE_BYTES,
    fitConfig: {},
    seed: 1,
    pollWaitMs: 200,
  };
  const server = new FlServer({ settings, strategy: timed, onEvent, interceptors: [countBytes] });
  const abort = new AbortController();
  const fitAt: number[] = [];
  const pushAt: number[] = [];
  const encode: number[] = [];
  try {
    await server.listen();
    const address = server.address;
    const running = server.run();
    const workers: Promise<WorkerSummary>[] = vectors.map((values, i) => {
      const id = `bench-${String(i).padStart(3, '0')}`;
      let fitCalled = 0;
      const client: FlClient = {
        numExamples: () => 100,
        getParameters: () => [{ name: TENSOR, shape: [values.length], values }],
        fit: async () => {
          fitCalled = performance.now();
          fitAt.push(fitCalled);
          return { parameters: [{ name: TENSOR, shape: [values.length], values }], numExamples: 100 };
        },
        evaluate: async () => ({ loss: 0, numExamples: 100 }),
      };
      const sendTap: Interceptor = (next) => async (req) => {
        if (fitPush(req) !== null) {
          const t = performance.now();
          pushAt.push(t);
          encode.push(t - fitCalled);
        }
        return await next(req);
      };
      return runWorker({
        workerId: id,
        token: deriveToken(settings.secret, id),
        client,
        transport: createRpcTransport({ address, maxMessageBytes: MAX_MESSAGE_BYTES, interceptors: [sendTap] }),
        pollWaitMs: settings.pollWaitMs!,
        signal: abort.signal,
        // The benchmark's own server made the key at the size given by --key-bits (1024 for smoke
        // runs): its workers accept that size.
        ...keySizeFor(keyBits).option,
      });
    });
    // A worker that fails ends the benchmark at once instead of leaving the server waiting.
    const failed = Promise.all(workers).then(() => new Promise<never>(() => undefined));
    const summary = await Promise.race([running, failed]);
    await Promise.all(workers);
    if (summary.model === null || !Number.isFinite(durationMs)) {
      throw new CipherMLError('CIPHERML_E_ROUND_FAILED', 'the benchmark round ended without a model', { param: 'bench' });
    }
    onProgress(`  ${strategy.name} round: ${durationMs.toFixed(0)} ms`);
    const last = (xs: readonly number[]) => Math.max(...xs) - roundStart;
    const sends = [...pushAt].sort((a, b) => a - b);
    const arrivals = [...arrived].sort((a, b) => a - b);
    return {
      durationMs,
      pushBytes,
      model: summary.model,
      timeline: {
        firstFitMs: Math.min(...fitAt) - roundStart,
        lastFitMs: last(fitAt),
        lastPushSentMs: last(pushAt),
        lastPushArrivedMs: last(arrived),
        aggregateStartMs: timed.aggregateStart - roundStart,
        aggregateEndMs: timed.aggregateEnd - roundStart,
        durationMs,
        encodeMsPerClient: mean(encode),
        sendMsPerClient: mean(arrivals.map((a, i) => a - sends[i]!)),
        checkMsTotal: timed.checkMs,
        measureMsTotal: measureMs,
      },
    };
  } finally {
    abort.abort();
    await server.close();
    await rm(runDir, { recursive: true, force: true });
  }
}

/** Max |model − mean of the vectors|. */
function maxErrorVsMean(model: Float64Array, vectors: readonly Float64Array[]): number {
  let err = 0;
  for (let i = 0; i < model.length; i++) {
    let want = 0;
    for (const v of vectors) want += v[i]!;
    err = Math.max(err, Math.abs(model[i]! - want / vectors.length));
  }
  return err;
}

/**
 * Runs the benchmark.
 *
 * @example
 * ```ts
 * const r = await runFlBench({ params: 100_000, clients: 10, keyBits: 2048 });
 * console.log(r.overheadRatio, r.bytesRatio);
 * ```
 */
export async function runFlBench(options: FlBenchOptions = {}): Promise<FlBenchResult> {
  const log = options.onProgress ?? (() => undefined);
  const params = options.params ?? 100_000;
  const clients = options.clients ?? 10;
  const keyBits = options.keyBits ?? 2048;
  const runs = options.runs ?? 3;
  if (!(Number.isInteger(params) && params >= 1)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'params must be a positive integer', { param: 'params' });
  if (!(Number.isInteger(clients) && clients >= 1 && clients <= PACKING.maxContributions)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `clients must be an integer in 1..${PACKING.maxContributions}`, { param: 'clients' });
  }
  if (!(Number.isInteger(runs) && runs >= 1)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'runs must be a positive integer', { param: 'runs' });

  const t = performance.now();
  const pair: PaillierKeyPair = await generatePaillierKeyPair({ bits: keyBits });
  const keygenMs = performance.now() - t;
  const { publicKey: pk, privateKey: sk } = pair;
  const layout = PackingLayout.forKey(pk, PACKING);
  const pool = sharedPaillierPool(); // the pool the workers encrypt on (encryptVector's default); the server decrypts on keyHolderPool(sk)
  log(`key: ${keyBits} bits, backend ${pk.backend.name}, keygen ${keygenMs.toFixed(0)} ms; pool of ${pool.size} workers`);

  const vectors = Array.from({ length: clients }, () => Float64Array.from({ length: params }, () => Math.random() * 2 - 1));
  // Each worker encrypts w·θ with w = its share of the examples (all equal here).
  const weighted = vectors.map((v) => v.map((x) => x / clients));

  // Warm-up: every pool worker builds its DJN table, and the key holder's threads cache the key, before anything is timed.
  const warm = Float64Array.from({ length: layout.slotsPerCiphertext * pool.size * 8 }, () => Math.random());
  await decryptVector(sk, await encryptVector(pk, warm, { packing: PACKING }));

  const engine = { total: [] as number[], encrypt: [] as number[], sum: [] as number[], decrypt: [] as number[], err: [] as number[] };
  const plainMs: number[] = [];
  const paillierRounds: (RoundMeasure & { err: number })[] = [];
  let plainPushBytes: readonly number[] = [];
  let oneUpdate: PackedCiphertext | null = null;
  for (let r = 0; r < runs; r++) {
    log(`run ${r + 1}/${runs}: engine (${clients} × ${params.toLocaleString('en')} values, no RPC)`);
    const t0 = performance.now();
    const encs = await Promise.all(weighted.map((v) => encryptVector(pk, v, { packing: PACKING })));
    const t1 = performance.now();
    const sum = PackedCiphertext.sum(encs);
    const t2 = performance.now();
    const dec = await decryptVector(sk, sum);
    const t3 = performance.now();
    engine.total.push(t3 - t0);
    engine.encrypt.push(t1 - t0);
    engine.sum.push(t2 - t1);
    engine.decrypt.push(t3 - t2);
    engine.err.push(maxErrorVsMean(dec, vectors));
    oneUpdate = encs[0]!;
    log(`  engine: ${(t3 - t0).toFixed(0)} ms (encrypt ${(t1 - t0).toFixed(0)}, sum ${(t2 - t1).toFixed(0)}, decrypt ${(t3 - t2).toFixed(0)})`);

    log(`run ${r + 1}/${runs}: plain FedAvg round over loopback gRPC`);
    const plain = await runRound(new PlainFedAvg(), vectors, keyBits, log);
    plainMs.push(plain.durationMs);
    plainPushBytes = plain.pushBytes;

    log(`run ${r + 1}/${runs}: Paillier FedAvg round over loopback gRPC`);
    const paillier = await runRound(new PaillierFedAvg({ kind: 'server', privateKey: sk }, PACKING), vectors, keyBits, log);
    paillierRounds.push({ ...paillier, err: maxErrorVsMean(paillier.model[0]!.values, vectors) });
  }

  // One update's main-thread costs, step by step (what the round does besides the engine's work).
  log('per-update costs: serialize, deserialize (Z*_{n^2} checks), protobuf');
  const one = oneUpdate!;
  const reps = Math.max(5, runs);
  const bytes = serializePacked(one);
  const serializePackedMs = timeEach(reps, () => serializePacked(one));
  const deserializePackedMs = timeEach(reps, () => deserializePacked(pk, bytes, { length: params, layout }));
  const assertCiphertextMs = timeEach(reps, () => one.values.forEach((c, i) => pk.assertCiphertext(c, `values[${i}]`)));
  const request = create(PushResultRequestSchema, {
    sessionId: 'x'.repeat(32),
    taskId: 'bench-task',
    round: 1,
    body: { case: 'fit', value: { model: { kind: { case: 'encrypted', value: { packed: bytes, specs: specsOf([{ name: TENSOR, shape: [params], values: new Float64Array(0) }]), weightTotal: 1 / clients } } }, numExamples: 100n, metrics: {} } },
  });
  const wire = toBinary(PushResultRequestSchema, request);
  const protobufEncodeMs = timeEach(reps, () => toBinary(PushResultRequestSchema, request));
  const protobufDecodeMs = timeEach(reps, () => fromBinary(PushResultRequestSchema, wire));

  const mid = [...paillierRounds].sort((a, b) => a.durationMs - b.durationMs)[paillierRounds.length >> 1]!;
  const paillierRoundMs = median(paillierRounds.map((p) => p.durationMs));
  const engineMs = median(engine.total);
  const ciphertextsPerClient = layout.ciphertextsFor(params);
  const ciphertextBytesPerClient = ciphertextsPerClient * pk.ciphertextBytes;
  const bytesPerClient = mean(mid.pushBytes);
  return {
    params,
    clients,
    keyBits,
    backend: pk.backend.name,
    cores: availableParallelism(),
    poolSize: pool.size,
    runs,
    keygenMs,
    plainRoundMs: median(plainMs),
    paillierRoundMs,
    engineMs,
    overheadRatio: paillierRoundMs / engineMs,
    bytesPerClient,
    ciphertextBytesPerClient,
    bytesRatio: bytesPerClient / ciphertextBytesPerClient,
    targets: { overheadRatio: 1.5, bytesRatio: 1.1 },
    plainBytesPerClient: mean(plainPushBytes),
    ciphertextsPerClient,
    valuesPerCiphertext: layout.slotsPerCiphertext,
    engine: { encryptMs: median(engine.encrypt), sumMs: median(engine.sum), decryptMs: median(engine.decrypt), maxAbsError: Math.max(...engine.err) },
    paillierRound: { ...mid.timeline, maxAbsError: Math.max(...paillierRounds.map((p) => p.err)) },
    perClient: { serializePackedMs, deserializePackedMs, assertCiphertextMs, protobufEncodeMs, protobufDecodeMs },
  };
}

/** The result as an aligned text table. */
export function formatFlBench(r: FlBenchResult): string {
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const mb = (x: number) => `${(x / 1e6).toFixed(3)} MB`;
  const ok = (x: number, target: number) => (x <= target ? 'ok' : 'MISSED');
  const rows: [string, string, string][] = [
    ['metric', 'value', 'target'],
    ['plain round (server round time)', ms(r.plainRoundMs), 'baseline'],
    ['Paillier round (server round time)', ms(r.paillierRoundMs), ''],
    ['Paillier engine alone (encrypt, sum, decrypt)', ms(r.engineMs), ''],
    ['overhead: Paillier round / engine', `${r.overheadRatio.toFixed(2)}×`, `≤ ${r.targets.overheadRatio}× ${ok(r.overheadRatio, r.targets.overheadRatio)}`],
    ['Paillier round / plain round', `${(r.paillierRoundMs / r.plainRoundMs).toFixed(1)}×`, ''],
    ['bytes sent per client (PushResult, Paillier)', mb(r.bytesPerClient), ''],
    [`raw ciphertexts per client (${r.ciphertextsPerClient} × ${r.ciphertextBytesPerClient / r.ciphertextsPerClient} B)`, mb(r.ciphertextBytesPerClient), ''],
    ['bytes ratio: sent / raw ciphertexts', `${r.bytesRatio.toFixed(3)}×`, `≤ ${r.targets.bytesRatio}× ${ok(r.bytesRatio, r.targets.bytesRatio)}`],
    ['bytes sent per client (PushResult, plain)', mb(r.plainBytesPerClient), ''],
  ];
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: readonly string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(w[i]!) : i === 1 ? cell.padStart(w[i]!) : cell)).join('  ').trimEnd();
  const e = r.engine;
  const p = r.paillierRound;
  const c = r.perClient;
  const n = r.clients;
  return [
    `FedAvg round over loopback gRPC: ${n} workers × ${r.params.toLocaleString('en')} params, ${r.keyBits}-bit key (${r.valuesPerCiphertext} values / ciphertext), backend ${r.backend}, ${r.cores} cores, pool of ${r.poolSize}, median of ${r.runs} run(s)`,
    line(rows[0]!),
    line(w.map((x) => '-'.repeat(x))),
    ...rows.slice(1).map(line),
    '',
    `Engine: encrypt ${ms(e.encryptMs)} (${n} vectors concurrently on the pool) · sum ${ms(e.sumMs)} · decrypt ${ms(e.decryptMs)} · max |error| ${e.maxAbsError.toExponential(2)}`,
    `Paillier round timeline (median run), ms since the server sent the fit tasks:`,
    `  fit tasks decoded by workers     ${p.firstFitMs.toFixed(0)} … ${p.lastFitMs.toFixed(0)}`,
    `  last update encrypted + sent at  ${p.lastPushSentMs.toFixed(0)}   (per worker: encode ${ms(p.encodeMsPerClient)}, then ${ms(p.sendMsPerClient)} to reach the handler)`,
    `  last update at the server        ${p.lastPushArrivedMs.toFixed(0)}   (checkFitResult ${ms(p.checkMsTotal)} in total on the main thread; byte counting ${ms(p.measureMsTotal)})`,
    `  aggregate (sum + decrypt)        ${p.aggregateStartMs.toFixed(0)} … ${p.aggregateEndMs.toFixed(0)}`,
    `  round end                        ${p.durationMs.toFixed(0)}   max |error| ${p.maxAbsError.toExponential(2)}`,
    `Per update, main thread: serializePacked ${c.serializePackedMs.toFixed(1)} ms · deserializePacked ${c.deserializePackedMs.toFixed(1)} ms (Z*_{n²} checks ${c.assertCiphertextMs.toFixed(1)} ms) · protobuf encode ${c.protobufEncodeMs.toFixed(1)} / decode ${c.protobufDecodeMs.toFixed(1)} ms`,
  ].join('\n');
}
