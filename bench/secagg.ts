import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { CipherMLError } from '../src/core/errors.ts';
import {
  FitResultSchema,
  SecAggStageResultSchema,
  SecAggStageTaskSchema,
  type FitResult,
  type SecAggStageResult,
  type SecAggStageTask,
  type TensorSpec,
} from '../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { Roster, generateIdentity, publicIdentity, type Identity } from '../src/core/identity.ts';
import { specsOf, tensorsToWire, type NamedTensor } from '../src/fl/protocol.ts';
import { SecAggFedAvg, advertiseKeys, answerStage, beginWorkerRound, type SecAggSettings, type SecAggWorkerRound } from '../src/fl/secagg.ts';
import { PlainFedAvg, type FitOutcome, type StageRunner } from '../src/fl/strategy.ts';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { secAggPlusParameters, type SecAggMode } from '../src/secagg/index.ts';
import { SIMULATED_NOTE, simulatedPlusRound } from './secagg-scale.ts';

/**
 * Secure-aggregation benchmark: one FedAvg aggregation round of n in-process clients, plain and
 * secure, in one run, through the runtime's own code (PlainFedAvg / SecAggFedAvg on the server,
 * beginWorkerRound / answerStage on each client, every message protobuf-encoded and decoded as
 * it would cross the wire). Baseline: the plain FedAvg round of the same size.
 *
 * Clients of a real deployment compute in parallel, so a round's time is its critical path:
 * Σ over stages of (slowest client's time in that stage + the server's time closing it). Every
 * client's work is still run and timed here, one after the other. Dropouts happen at the
 * masked-input stage (after sharing keys), which makes the server recover their pairwise masks:
 * the worst case of Bonawitz et al. §4.
 *
 * Each party is charged only its own work: a client's time covers decoding its task, its
 * protocol step and encoding its answer; the server's covers everything else inside the round
 * (encoding tasks, checking and routing answers, unmasking). Identities of the actively secure
 * round are generated before the round (long-term keys, not per-round work).
 */

export interface SecAggBenchOptions {
  readonly clients?: number;
  readonly params?: number;
  /** Fraction of clients that drop after sharing keys (default 0.1). */
  readonly dropout?: number;
  readonly mode?: SecAggMode;
  /** Clients of the extra SecAgg+ rounds (default [1,000]; [] or [0] skips them). */
  readonly plusClients?: number | readonly number[];
  /** Parameters of the SecAgg+ rounds (default: `params`). */
  readonly plusParams?: number;
  readonly onProgress?: (line: string) => void;
}

/** One measured round. */
export interface RoundFigures {
  readonly clients: number;
  readonly params: number;
  readonly dropped: number;
  /** Critical path, ms. */
  readonly roundMs: number;
  /** Server time, ms (all stages). */
  readonly serverMs: number;
  /** Slowest client summed over stages, ms. */
  readonly clientMs: number;
  /** Bytes one surviving client sends, all stages (protobuf-encoded answers). */
  readonly bytesPerClient: number;
  /** Bytes one surviving client receives in the stage tasks after the fit task. */
  readonly bytesReceivedPerClient: number;
  /** max |aggregate − plain weighted mean of the survivors|. */
  readonly maxAbsError: number;
  /** Actively secure variant (signed keys, consistency check). */
  readonly active: boolean;
  /** Neighbours per client and Shamir threshold the round ran with. */
  readonly degree: number;
  readonly threshold: number;
  /** PRG masks the server expanded to unmask. */
  readonly masks: number;
  /**
   * Commit–reveal of the SecAgg+ graph seed (actively secure sparse rounds only): committee size,
   * the reveal stage's server and slowest-client time, and the bytes per client it adds to what
   * the previous protocol received (the reveal tasks, the committee entries, reveals and proof
   * nodes in each view; exact in simulated rounds, without the extra proof nodes in full ones).
   */
  readonly seedReveal?: { readonly committee: number; readonly serverMs: number; readonly clientMs: number; readonly bytesReceivedPerClient: number };
  /**
   * `full`: every client ran at the full vector length; `simulated`: sampled clients ran for
   * real among synthetic peers and the vector-length work was timed on samples (secagg-scale.ts).
   */
  readonly method: 'full' | 'simulated';
}

export interface SecAggBenchResult {
  readonly clients: number;
  readonly params: number;
  readonly dropout: number;
  readonly mode: SecAggMode;
  readonly plainRoundMs: number;
  readonly secaggRoundMs: number;
  readonly plainBytesPerClient: number;
  readonly secaggBytesPerClient: number;
  readonly roundRatio: number;
  readonly bytesRatio: number;
  readonly plain: RoundFigures;
  readonly secagg: RoundFigures;
  readonly secaggPlus: RoundFigures | null;
  /** The actively secure round of the same size and mode as `secagg` (honest-but-curious). */
  readonly active: RoundFigures;
  readonly activeRoundMs: number;
  readonly activeBytesPerClient: number;
  readonly activeBytesReceivedPerClient: number;
  /** active.roundMs / secagg.roundMs in the same run. */
  readonly activeRoundRatio: number;
  readonly activeBytesRatio: number;
  /** SecAgg+ rounds at every `plusClients` size (the first is `secaggPlus`). */
  readonly secaggPlusScale: readonly RoundFigures[];
  /** Bytes received per client at the largest SecAgg+ size over the smallest (null with fewer than two sizes). */
  readonly plusBytesGrowth: number | null;
  readonly targets: { readonly roundRatio: number; readonly bytesRatio: number; readonly activeRoundRatio: number; readonly plusBytesGrowth: number };
  readonly baseline: string;
}

/**
 * A full garbage collection, run between parties' work so one party's garbage is not collected
 * (and timed) inside another's (V8's gc(), exposed at run time; a no-op if V8 refuses).
 */
export const collectGarbage: () => void = (() => {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return gc as () => void;
  } catch {
    // fall through
  }
  return () => undefined;
})();

/** Deterministic pseudo-random model values in [−1, 1) (xorshift32). */
export function modelOf(seed: number, params: number): NamedTensor[] {
  let x = (seed * 2654435761) >>> 0 || 1;
  const values = new Float64Array(params);
  for (let i = 0; i < params; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    values[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return [{ name: 'w', shape: [params], values }];
}

function meanOf(models: readonly NamedTensor[][], weights: readonly number[]): Float64Array {
  const out = new Float64Array(models[0]![0]!.values.length);
  const total = weights.reduce((a, b) => a + b, 0);
  models.forEach((m, k) => m[0]!.values.forEach((v, i) => (out[i]! += (weights[k]! / total) * v)));
  return out;
}

function maxDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function plainRound(clients: number, params: number, progress: (l: string) => void): Promise<RoundFigures> {
  const strategy = new PlainFedAvg();
  const models = Array.from({ length: clients }, (_, k) => modelOf(k + 1, params));
  const specs: TensorSpec[] = specsOf(models[0]!);
  let clientMax = 0;
  let server = 0;
  let bytes = 0;
  const outcomes: FitOutcome[] = [];
  const wires: Uint8Array[] = [];
  // Clients encode first, the server then decodes and averages, each party timed apart (with the
  // same per-client collection as the secure rounds), so neither pays for the other's garbage.
  for (let k = 0; k < clients; k++) {
    if (clients <= ISOLATE_CLIENTS) collectGarbage();
    const t0 = performance.now();
    wires.push(toBinary(FitResultSchema, create(FitResultSchema, { model: { kind: { case: 'plain', value: { tensors: tensorsToWire(models[k]!) } } }, numExamples: 100n })));
    clientMax = Math.max(clientMax, performance.now() - t0);
    bytes = wires[k]!.length;
  }
  collectGarbage();
  const t1 = performance.now();
  for (let k = 0; k < clients; k++) {
    const result = fromBinary(FitResultSchema, wires[k]!);
    outcomes.push({ workerId: String(k), numExamples: 100, weight: 1 / clients, decoded: strategy.checkFitResult(result, specs, 'result'), metrics: {} });
  }
  const model = await strategy.aggregateFit(1, outcomes, specs);
  server += performance.now() - t1;
  progress(`plain: ${clients} clients × ${params} params aggregated`);
  const got = model.kind === 'plain' ? model.tensors[0]!.values : new Float64Array(params);
  return { clients, params, dropped: 0, roundMs: clientMax + server, serverMs: server, clientMs: clientMax, bytesPerClient: bytes, bytesReceivedPerClient: 0, maxAbsError: maxDiff(got, meanOf(models, models.map(() => 1))), active: false, degree: 0, threshold: 0, masks: 0, method: 'full' };
}

/** The bench's secure-aggregation settings for a round of `clients`. */
export function settingsFor(mode: SecAggMode, clients: number): SecAggSettings {
  // Q = 2^22 (Flower's default) while n·(Q − 1) fits 32 bits; halved per doubling of n beyond.
  let quantizationRange = 2 ** 22;
  while (clients * (quantizationRange - 1) >= 2 ** 32) quantizationRange /= 2;
  return { mode, clippingRange: 8, quantizationRange, modulusRange: 0, threshold: 0, shareSecretsRatio: 0.5, stageTimeoutMs: 60_000, numShares: 0, collusion: false, onViolation: 'refuse' };
}

async function secureRound(mode: SecAggMode, clients: number, params: number, dropout: number, progress: (l: string) => void, active = false): Promise<RoundFigures> {
  const strategy = new SecAggFedAvg(settingsFor(mode, clients));
  // Server start-up (untimed, as in the runtime: the unmasking threads start with the server).
  await strategy.setup();
  // Models are made one client at a time and not kept (1,000 × 100,000 float64 would be 800 MB
  // of benchmark overhead for the garbage collector); the expected mean is accumulated instead.
  const specs: TensorSpec[] = specsOf([{ name: 'w', shape: [params], values: new Float64Array(0) }]);
  const ids = Array.from({ length: clients }, (_, k) => `c${String(k).padStart(5, '0')}`);
  const identities = new Map<string, Identity>(active ? ids.map((id) => [id, generateIdentity('worker', id)]) : []);
  const peers = active ? new Roster([...identities.values()].map((i) => publicIdentity(i))) : null;
  const label = `${mode}${active ? ' (active)' : ''}`;
  const dropCount = mode === 'stable-pw' ? 0 : Math.floor(dropout * clients);
  const dropping = new Set(ids.slice(clients - dropCount));
  const weights = ids.map(() => 1 / clients);
  const expected = new Float64Array(params);
  const roundId = 'bench-r1';
  // Up to ISOLATE_CLIENTS clients, the heap is collected (untimed) before each client's step, so
  // no client is timed collecting another's garbage (the slowest client is the critical path).
  const isolate = clients <= ISOLATE_CLIENTS;
  const t0 = performance.now();
  const round = strategy.beginFit(roundId, clients, specs);
  let server = performance.now() - t0;
  const states = new Map<string, SecAggWorkerRound>();
  const sent = new Map<string, number>(ids.map((id) => [id, 0]));
  const received = new Map<string, number>(ids.map((id) => [id, 0]));
  let clientPath = 0;
  let stageMax = 0;
  const outcomes: FitOutcome[] = [];
  for (let k = 0; k < clients; k++) {
    // The client's trained model and the expected mean are the bench's bookkeeping: untimed.
    const model = modelOf(k + 1, params);
    if (!dropping.has(ids[k]!)) model[0]!.values.forEach((v, i) => (expected[i]! += v / (clients - dropCount)));
    if (isolate) collectGarbage();
    const c0 = performance.now();
    const state = beginWorkerRound(round, ids[k]!, model, weights[k]!, peers === null ? {} : { identity: identities.get(ids[k]!)!, peers });
    const keys = advertiseKeys(state);
    const wire = toBinary(FitResultSchema, create(FitResultSchema, { numExamples: 100n, metrics: { clipped: state.clipped }, secaggKeys: keys }));
    const c1 = performance.now();
    stageMax = Math.max(stageMax, c1 - c0);
    states.set(ids[k]!, state);
    sent.set(ids[k]!, wire.length);
    const decoded = strategy.checkFitResult(fromBinary(FitResultSchema, wire) as FitResult, specs, 'result');
    outcomes.push({ workerId: ids[k]!, numExamples: 100, weight: weights[k]!, decoded, metrics: {} });
    server += performance.now() - c1;
  }
  clientPath += stageMax;
  progress(`${label}: stage advertise done (${clients} clients)`);
  /** Time inside aggregateFit that is not the server's: client steps and the untimed collections. */
  let clientTotal = 0;
  let masks = 0;
  const reveal = { committee: 0, clientMs: 0, bytes: 0, serverMs: 0 };
  const runner: StageRunner = {
    roundId,
    run: async (stage: string, tasks: ReadonlyMap<string, SecAggStageTask>, _timeoutMs: number, accept: (id: string, r: SecAggStageResult) => void) => {
      let max = 0;
      const r0 = performance.now();
      const clientBefore = clientTotal;
      const answered = new Set<string>();
      const wires = new Map<SecAggStageTask, Uint8Array>();
      for (const [id, task] of tasks) {
        // The server encodes each distinct task once (a task shared by many clients is one buffer).
        let taskWire = wires.get(task);
        if (taskWire === undefined) wires.set(task, (taskWire = toBinary(SecAggStageTaskSchema, task)));
        received.set(id, received.get(id)! + taskWire.length);
        if (stage === 'reveal') reveal.bytes += taskWire.length;
        if (stage === 'share-keys' && task.stage.case === 'roster' && task.stage.value.committee.length > 0) {
          const v = task.stage.value;
          const legacy = { ...v, entries: v.entries.map((e) => ({ ...e, commitment: new Uint8Array(0) })), committee: [], reveals: [] };
          reveal.bytes += taskWire.length - toBinary(SecAggStageTaskSchema, create(SecAggStageTaskSchema, { roundId, stage: { case: 'roster', value: legacy } })).length;
        }
        if (stage === 'masked-input' && dropping.has(id)) continue;
        if (isolate) {
          const g0 = performance.now();
          collectGarbage();
          clientTotal += performance.now() - g0; // excluded from the server's time, like client work
        }
        const c0 = performance.now();
        const answer = toBinary(SecAggStageResultSchema, answerStage(states.get(id)!, fromBinary(SecAggStageTaskSchema, taskWire)).result);
        const dt = performance.now() - c0;
        max = Math.max(max, dt);
        clientTotal += dt;
        sent.set(id, sent.get(id)! + answer.length);
        accept(id, fromBinary(SecAggStageResultSchema, answer));
        answered.add(id);
      }
      clientPath += max;
      if (stage === 'reveal') Object.assign(reveal, { committee: tasks.size, clientMs: max, serverMs: performance.now() - r0 - (clientTotal - clientBefore) });
      // The in-process clients' garbage is theirs (on their own machines in a deployment):
      // collect it now, untimed, so the server's stage close is not charged for it.
      const g0 = performance.now();
      collectGarbage();
      clientTotal += performance.now() - g0;
      progress(`${label}: stage ${stage} done (${answered.size} of ${tasks.size} clients answered)`);
      return answered;
    },
    report: (r) => {
      masks = (r as { masks?: number }).masks ?? 0;
    },
  };
  collectGarbage();
  const a0 = performance.now();
  const model = await strategy.aggregateFit(1, outcomes, specs, runner);
  // The runner's own client work ran inside aggregateFit; the rest is the server's.
  server += performance.now() - a0 - clientTotal;
  const survivors = ids.filter((id) => !dropping.has(id));
  const got = model.kind === 'plain' ? model.tensors[0]!.values : new Float64Array(params);
  const mean = (m: Map<string, number>) => survivors.reduce((a, id) => a + m.get(id)!, 0) / survivors.length;
  return {
    clients,
    params,
    dropped: dropCount,
    roundMs: clientPath + server,
    serverMs: server,
    clientMs: clientPath,
    bytesPerClient: mean(sent),
    bytesReceivedPerClient: mean(received),
    maxAbsError: maxDiff(got, expected),
    active,
    ...(reveal.committee === 0 ? {} : { seedReveal: { committee: reveal.committee, serverMs: reveal.serverMs, clientMs: reveal.clientMs, bytesReceivedPerClient: reveal.bytes / clients } }),
    degree: mode === 'secagg+' ? Math.min(clients - 1, secAggPlusParameters(clients).degree) : clients - 1,
    threshold: round.threshold,
    masks,
    method: 'full',
  };
}

/** Rounds of at most this many clients collect garbage between clients' steps (untimed). */
const ISOLATE_CLIENTS = 200;

/** Rounds with more than this many clients × parameters run simulated (bench/secagg-scale.ts). */
export const FULL_ROUND_WORDS = 20_000_000;

/**
 * Runs the plain and secure rounds (and SecAgg+ at `plusClients`) and returns the figures.
 *
 * @example
 * ```ts
 * const r = await runSecAggBench({ clients: 100, params: 100_000, dropout: 0.1 });
 * console.log(r.secaggRoundMs / r.plainRoundMs);
 * ```
 */
export async function runSecAggBench(options: SecAggBenchOptions = {}): Promise<SecAggBenchResult> {
  const clients = options.clients ?? 100;
  const params = options.params ?? 100_000;
  const dropout = options.dropout ?? 0.1;
  const mode = options.mode ?? 'pw';
  const plusList = (Array.isArray(options.plusClients) ? options.plusClients : [options.plusClients ?? 1000]).filter((c: number) => c > 0);
  const plusParams = options.plusParams ?? params;
  const progress = options.onProgress ?? (() => undefined);
  if (!Number.isInteger(clients) || clients < 3) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `need at least 3 clients, got ${clients}`, { param: '--clients' });
  if (!Number.isInteger(params) || params < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `need at least 1 parameter, got ${params}`, { param: '--params' });
  if (!(dropout >= 0 && dropout < 0.5)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `dropout must be in [0, 0.5) so that threshold + 1 survivors remain, got ${dropout}`, { param: '--dropout' });
  const faster = (a: RoundFigures, b: RoundFigures) => (b.roundMs < a.roundMs ? b : a);
  for (const c of plusList) if (!Number.isInteger(c) || c < 3) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `SecAgg+ rounds need at least 3 clients, got ${c}`, { param: '--plus-clients' });
  // Untimed warm-up (JIT, key import caches) so the first measured round is not charged for it.
  await secureRound('pw', 5, 100, 0, () => undefined, true);
  // Each round runs twice, interleaved (plain, honest-but-curious, active, and again), and the
  // faster run of each counts: on a shared machine this keeps the ratios from measuring load.
  const activeMode = mode === 'stable-pw' ? 'pw' : mode; // the active variant has no stable-pw mode
  const runs: RoundFigures[][] = [[], [], []];
  for (let rep = 0; rep < 2; rep++) {
    runs[0]!.push(await plainRound(clients, params, progress));
    runs[1]!.push(await secureRound(mode, clients, params, dropout, progress));
    runs[2]!.push(await secureRound(activeMode, clients, params, dropout, progress, true));
  }
  const [plain, secagg, active] = runs.map((r) => faster(r[0]!, r[1]!)) as [RoundFigures, RoundFigures, RoundFigures];
  const secaggPlusScale: RoundFigures[] = [];
  // The SecAgg+ rounds run the actively secure variant (signed keys, neighbourhood views with
  // Merkle proofs, consistency check): the one whose per-client cost the issue tracks.
  for (const c of plusList) secaggPlusScale.push(c * plusParams <= FULL_ROUND_WORDS ? await secureRound('secagg+', c, plusParams, dropout, progress, true) : await simulatedPlusRound(c, plusParams, dropout, progress));
  const secaggPlus = secaggPlusScale[0] ?? null;
  const first = secaggPlusScale[0];
  const last = secaggPlusScale[secaggPlusScale.length - 1];
  return {
    clients,
    params,
    dropout,
    mode,
    plainRoundMs: plain.roundMs,
    secaggRoundMs: secagg.roundMs,
    plainBytesPerClient: plain.bytesPerClient,
    secaggBytesPerClient: secagg.bytesPerClient,
    roundRatio: secagg.roundMs / plain.roundMs,
    bytesRatio: secagg.bytesPerClient / plain.bytesPerClient,
    plain,
    secagg,
    secaggPlus,
    active,
    activeRoundMs: active.roundMs,
    activeBytesPerClient: active.bytesPerClient,
    activeBytesReceivedPerClient: active.bytesReceivedPerClient,
    activeRoundRatio: active.roundMs / secagg.roundMs,
    activeBytesRatio: (active.bytesPerClient + active.bytesReceivedPerClient) / (secagg.bytesPerClient + secagg.bytesReceivedPerClient),
    secaggPlusScale,
    plusBytesGrowth: first !== undefined && last !== undefined && last !== first ? last.bytesReceivedPerClient / first.bytesReceivedPerClient : null,
    targets: { roundRatio: 3, bytesRatio: 1.5, activeRoundRatio: 1.3, plusBytesGrowth: 2 },
    baseline: 'plain FedAvg round of the same size (PlainFedAvg, float64 parameters)',
  };
}

/** The result as an aligned text table. */
export function formatSecAggBench(r: SecAggBenchResult): string {
  const row = (name: string, f: RoundFigures) =>
    `${name.padEnd(28)}${String(f.clients).padStart(8)}${String(f.dropped).padStart(8)}${f.roundMs.toFixed(0).padStart(10)}${f.serverMs.toFixed(0).padStart(10)}${f.clientMs.toFixed(0).padStart(10)}${(f.bytesPerClient / 1024).toFixed(1).padStart(12)}${(f.bytesReceivedPerClient / 1024).toFixed(1).padStart(12)}${(Number.isFinite(f.maxAbsError) ? f.maxAbsError.toExponential(1) : '—').padStart(10)}`;
  const verdict = (got: number, target: number) => `${got.toFixed(2)}× (target ≤ ${target}×: ${got <= target ? 'met' : 'MISSED'})`;
  return [
    `Secure aggregation round vs plain FedAvg, ${r.params} parameters, dropout ${r.dropout} after sharing keys (critical path: slowest client per stage + server)`,
    `${'round'.padEnd(28)}${'clients'.padStart(8)}${'dropped'.padStart(8)}${'round ms'.padStart(10)}${'server'.padStart(10)}${'client'.padStart(10)}${'KiB sent'.padStart(12)}${'KiB recv'.padStart(12)}${'max err'.padStart(10)}`,
    row('plain FedAvg', r.plain),
    row(`secagg (${r.mode})`, r.secagg),
    row(`secagg (${r.active.degree === r.clients - 1 && r.mode === 'stable-pw' ? 'pw' : r.mode}, active)`, r.active),
    ...r.secaggPlusScale.map((f) => row(`secagg+${f.active ? ' act.' : ''} k=${f.degree} t=${f.threshold}${f.method === 'simulated' ? ' *' : ''}`, f)),
    ...(r.secaggPlusScale.some((f) => f.method === 'simulated') ? [SIMULATED_NOTE] : []),
    ...r.secaggPlusScale.flatMap((f) =>
      f.seedReveal === undefined
        ? []
        : [
            `commit–reveal of the graph seed at ${f.clients} clients (committee ${f.seedReveal.committee}): reveal stage ${(f.seedReveal.serverMs + f.seedReveal.clientMs).toFixed(0)} ms (server ${f.seedReveal.serverMs.toFixed(0)}, client ${f.seedReveal.clientMs.toFixed(1)}) = ${((100 * (f.seedReveal.serverMs + f.seedReveal.clientMs)) / f.roundMs).toFixed(2)} % of the round; +${(f.seedReveal.bytesReceivedPerClient / 1024).toFixed(1)} KiB received per client over the previous protocol (${(f.bytesReceivedPerClient / 1024).toFixed(1)} vs ${((f.bytesReceivedPerClient - f.seedReveal.bytesReceivedPerClient) / 1024).toFixed(1)} KiB, ${(f.bytesReceivedPerClient / (f.bytesReceivedPerClient - f.seedReveal.bytesReceivedPerClient)).toFixed(3)}×)`,
          ],
    ),
    `round time ${verdict(r.roundRatio, r.targets.roundRatio)}; bytes per client ${verdict(r.bytesRatio, r.targets.bytesRatio)}`,
    `actively secure round vs honest-but-curious: ${verdict(r.activeRoundRatio, r.targets.activeRoundRatio)} (bytes sent + received ${r.activeBytesRatio.toFixed(2)}×)`,
    ...(r.plusBytesGrowth === null ? [] : [`SecAgg+ bytes received per client, ${r.secaggPlusScale[r.secaggPlusScale.length - 1]!.clients} vs ${r.secaggPlusScale[0]!.clients} clients: ${verdict(r.plusBytesGrowth, r.targets.plusBytesGrowth)}`]),
  ].join('\n');
}
