import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import type { ConnectRouter, HandlerContext, Interceptor } from '@connectrpc/connect';
import { CipherMLError, isCipherMLError } from '../core/errors.ts';
import { writeFileSafely } from '../core/io.ts';
import { stackedChartsSvg } from '../core/svg-plot.ts';
import {
  FederatedService,
  JoinResponseSchema,
  PackingSpecSchema,
  PullTaskResponseSchema,
  TaskSchema,
  type JoinRequest,
  type PushResultRequest,
  type SecAggStageResult,
  type SecAggStageTask,
  type Task,
  type TensorSpec,
} from './gen/cipherml/fl/v1/fl_pb.ts';
import { ReplayGuard, SIG_CONTEXT, verifyRequest, type PartyTrust } from './identity-auth.ts';
import { assertSameSpecs, checkDeclaredSpecs, checkProtocolVersion, checkToken, specsOf, tensorsFromWire, toConnectError, type NamedTensor } from './protocol.ts';
import { zeroModel, type FitOutcome, type GlobalModel, type StageReport, type StageRunner, type Strategy, type StrategyInfo } from './strategy.ts';
import { secAggResultBytes } from './secagg-wire.ts';
import { startRpcServer, type RpcServer, type TlsFiles } from './transport.ts';
import { mulberry32 } from '../core/prng.ts';

/**
 * The parameter server: workers join and long-poll for tasks; the server runs rounds in Flower's
 * shape (configure fit → aggregate fit → configure evaluate → aggregate evaluate), checkpoints the
 * global model and history after every round, and resumes from the checkpoint after a restart.
 *
 * Round invariants:
 * - a round samples ⌈fraction-fit · available⌉ workers, at least min-fit-clients;
 * - it aggregates as soon as every sampled worker has answered, or at round-timeout with the
 *   answers it has if there are at least min-fit-clients; otherwise it is retried (up to
 *   max-round-attempts), then the run fails with ROUND_FAILED;
 * - a worker that neither polls nor heartbeats for stale-after-ms is dropped: its open tasks
 *   fail at once, so a dead worker costs a round no more than that;
 * - a result is accepted only for an open task of the current round (else ROUND_CLOSED), after
 *   the strategy has checked it (shape, key, layout); a rejected result fails only that task.
 */

/** Server settings (the CLI maps the run config onto these). */
export interface ServerSettings {
  readonly address: string;
  readonly numRounds: number;
  readonly fractionFit: number;
  readonly fractionEvaluate: number;
  readonly minFitClients: number;
  readonly minEvaluateClients: number;
  readonly minAvailableClients: number;
  readonly roundTimeoutMs: number;
  readonly joinTimeoutMs: number;
  readonly evalEvery: number;
  readonly runDir: string;
  /** Run secret from which every party's token is derived; empty: no authentication. */
  readonly secret: string;
  readonly maxMessageBytes: number;
  readonly tls?: TlsFiles;
  /** Sent to workers with every fit task (local-epochs, batch-size, …). */
  readonly fitConfig: Readonly<Record<string, string>>;
  readonly seed: number;
  readonly pollWaitMs?: number;
  readonly staleAfterMs?: number;
  readonly maxRoundAttempts?: number;
  readonly authorityAddress?: string;
  /** Identity mode: the server's identity and the roster of workers it admits (null: token mode). */
  readonly trust?: PartyTrust | null;
  /** Serve plaintext HTTP/2 on a non-loopback address (--insecure-plaintext). */
  readonly insecurePlaintext?: boolean;
}

/** Metrics of a model on some data. */
export interface EvalMetrics {
  readonly loss: number;
  readonly accuracy?: number;
  readonly auc?: number;
  readonly count?: number;
}

/** One line of the run history (history.json). */
export interface RoundRecord {
  readonly round: number;
  readonly attempts: number;
  readonly fitResults: number;
  readonly fitFailures: number;
  readonly trainLoss: number | null;
  readonly federatedLoss: number | null;
  readonly federatedAccuracy: number | null;
  readonly serverLoss: number | null;
  readonly serverAccuracy: number | null;
  readonly serverAuc: number | null;
  readonly bytesIn: number;
  readonly durationMs: number;
  /** Multi-stage rounds (secure aggregation): survivors, dropouts, clipped values; else null. */
  readonly secagg: StageReport | null;
}

/** Progress events, for live output. */
export type ServerEvent =
  | { readonly type: 'listening'; readonly address: string; readonly strategy: string; readonly keyHolder: string }
  | { readonly type: 'resumed'; readonly round: number }
  | { readonly type: 'joined'; readonly workerId: string; readonly numExamples: number; readonly workers: number }
  | { readonly type: 'dropped'; readonly workerId: string; readonly reason: string }
  | { readonly type: 'rejected'; readonly workerId: string; readonly code: string; readonly message: string }
  | { readonly type: 'round-start'; readonly round: number; readonly attempt: number; readonly selected: readonly string[] }
  | { readonly type: 'round-retry'; readonly round: number; readonly reason: string }
  | { readonly type: 'stage'; readonly round: number; readonly stage: string; readonly answered: number; readonly expected: number; readonly ms: number }
  | { readonly type: 'round-end'; readonly record: RoundRecord }
  | { readonly type: 'finished'; readonly summary: RunSummary };

/** The outcome of a run. */
export interface RunSummary {
  readonly runId: string;
  readonly strategy: string;
  readonly keyHolder: string;
  readonly rounds: number;
  readonly final: RoundRecord | null;
  readonly history: readonly RoundRecord[];
  readonly runDir: string;
  /** The final global model when the server may see it. */
  readonly model: readonly NamedTensor[] | null;
}

/** Options of {@link FlServer}. */
export interface FlServerOptions {
  readonly settings: ServerSettings;
  readonly strategy: Strategy;
  /** Server-side validation (e.g. on a held-out set) when the server may see the model. */
  readonly evaluate?: (tensors: readonly NamedTensor[]) => EvalMetrics | Promise<EvalMetrics>;
  /** Initial parameters; default: the first worker's. */
  readonly initialModel?: readonly NamedTensor[];
  readonly onEvent?: (e: ServerEvent) => void;
  /** RPC interceptors (tests record what the server receives). */
  readonly interceptors?: Interceptor[];
  /**
   * Internal test and benchmark hook, never set in production: the join path without the issue-13
   * defences (the first join fixes the shape before it is checked; no bound on the declared shape).
   * Adversarial tests run against it to show that they fail without the defence.
   */
  readonly unsafeNaiveJoin?: boolean;
  /**
   * Where checkpoint.json lives (default: the run folder, in the clear). The enclave aggregator
   * (src/enclave) passes a store that seals it, and its own run id, bound by its attestation.
   */
  readonly checkpointStore?: CheckpointStore;
  readonly runId?: string;
}

/** Reads and writes the server's checkpoint (JSON text); `read` returns null when there is none. */
export interface CheckpointStore {
  read(): string | null;
  write(json: string): Promise<void>;
}

interface Session {
  readonly id: string;
  readonly workerId: string;
  readonly instanceId: string;
  readonly numExamples: number;
  lastSeen: number;
  readonly queue: Task[];
  wake: (() => void) | null;
  alive: boolean;
}

interface OpenTask {
  readonly taskId: string;
  readonly sessionId: string;
  readonly workerId: string;
  readonly kind: 'fit' | 'evaluate' | 'secagg';
  readonly weight: number;
  /** Stage tasks: validates and takes the answer (a throw rejects it). */
  readonly accept?: (result: SecAggStageResult) => void;
}

interface RoundState {
  readonly round: number;
  readonly open: Map<string, OpenTask>;
  readonly fits: FitOutcome[];
  readonly evals: { numExamples: number; loss: number; metrics: Record<string, number> }[];
  failures: number;
  bytesIn: number;
  settle: (() => void) | null;
  /** Set when the strategy runs multi-stage rounds. */
  roundId: string | null;
  report: StageReport | null;
}

interface Checkpoint {
  readonly version: 1;
  readonly runId: string;
  readonly round: number;
  readonly strategy: string;
  readonly keyHolder: string;
  readonly specs: { name: string; shape: number[] }[];
  readonly model: { kind: 'plain'; tensors: { name: string; shape: number[]; values: string }[] } | { kind: 'encrypted'; packed: string; weightTotal: number };
  readonly history: RoundRecord[];
}

const f64ToB64 = (a: Float64Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const b64ToF64 = (s: string): Float64Array => {
  const b = Buffer.from(s, 'base64');
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

/**
 * @example
 * ```ts
 * const server = new FlServer({ settings, strategy: new PlainFedAvg(), evaluate: (m) => validate(m) });
 * await server.listen();
 * const summary = await server.run();
 * await server.close();
 * ```
 */
export class FlServer {
  readonly #s: Required<Omit<ServerSettings, 'tls' | 'authorityAddress' | 'trust' | 'insecurePlaintext'>> & Pick<ServerSettings, 'tls' | 'authorityAddress' | 'trust' | 'insecurePlaintext'>;
  readonly #joinGuard = new ReplayGuard();
  readonly #strategy: Strategy;
  readonly #opts: FlServerOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #emit: (e: ServerEvent) => void;
  #info: StrategyInfo | null = null;
  #specs: TensorSpec[] | null = null;
  #model: GlobalModel | null = null;
  #round: RoundState | null = null;
  #nextRound = 1;
  #history: RoundRecord[] = [];
  #runId: string;
  #rpc: RpcServer | null = null;
  #joinWaiters: (() => void)[] = [];
  #monitor: NodeJS.Timeout | null = null;
  #finished = false;
  readonly #rand: () => number;

  constructor(options: FlServerOptions) {
    this.#opts = options;
    this.#s = { pollWaitMs: 5000, staleAfterMs: 15000, maxRoundAttempts: 3, ...options.settings };
    this.#strategy = options.strategy;
    this.#emit = options.onEvent ?? (() => undefined);
    this.#rand = mulberry32(this.#s.seed);
    this.#runId = options.runId ?? randomUUID();
    if (options.initialModel !== undefined) {
      this.#specs = specsOf(options.initialModel);
      this.#model = { kind: 'plain', tensors: options.initialModel };
    }
    this.#loadCheckpoint();
  }

  /**
   * What later requests see of the join state: the model shape, the initial model's values and
   * the live sessions' worker ids (for tests that a refused join changes none of it).
   */
  inspect(): { specs: { name: string; shape: number[] }[] | null; model: number[] | null; workers: string[] } {
    const m = this.#model;
    return {
      specs: this.#specs?.map((s) => ({ name: s.name, shape: [...s.shape] })) ?? null,
      model: m === null ? null : m.kind === 'plain' ? m.tensors.flatMap((t) => Array.from(t.values)) : [m.weightTotal],
      workers: this.#alive().map((s) => s.workerId).sort(),
    };
  }

  /** The bound address (after listen). */
  get address(): string {
    return this.#rpc?.address ?? this.#s.address;
  }

  /** Routes of the FederatedService, for a real server or an in-memory transport. */
  routes(router: ConnectRouter): void {
    router.service(FederatedService, {
      join: (req) => this.#wrap(() => this.#join(req), req.workerId),
      pullTask: (req, ctx) => this.#wrap(() => this.#pull(req.sessionId, req.waitMs, ctx)),
      pushResult: (req) => this.#wrap(() => this.#push(req)),
      heartbeat: (req) => this.#wrap(() => {
        this.#touch(req.sessionId);
        return {};
      }),
      leave: (req) => this.#wrap(() => {
        const s = this.#sessions.get(req.sessionId);
        if (s !== undefined) this.#drop(s, `left: ${req.reason}`);
        return {};
      }),
    });
  }

  /** Prepares the strategy and starts serving on the configured address. */
  async listen(): Promise<string> {
    await this.#prepare();
    this.#rpc = await startRpcServer({
      address: this.#s.address,
      routes: (r) => this.routes(r),
      maxMessageBytes: this.#s.maxMessageBytes,
      ...(this.#s.tls === undefined ? {} : { tls: this.#s.tls }),
      ...(this.#s.insecurePlaintext === true ? { insecurePlaintext: true } : {}),
      ...(this.#opts.interceptors === undefined ? {} : { interceptors: this.#opts.interceptors }),
    });
    this.#emit({ type: 'listening', address: this.#rpc.address, strategy: this.#strategy.name, keyHolder: this.#strategy.keyHolder });
    return this.#rpc.address;
  }

  /** Prepares the strategy without listening (in-memory simulation). */
  async prepare(): Promise<void> {
    await this.#prepare();
  }

  async #prepare(): Promise<void> {
    this.#info ??= await this.#strategy.setup();
    this.#monitor ??= setInterval(() => this.#reap(), 500);
    this.#monitor.unref();
  }

  /** Runs the remaining rounds and returns the summary. */
  async run(): Promise<RunSummary> {
    await this.#prepare();
    await mkdir(this.#s.runDir, { recursive: true });
    await this.#waitForWorkers(this.#s.minAvailableClients, this.#s.joinTimeoutMs);
    for (let round = this.#nextRound; round <= this.#s.numRounds; round++) {
      const t0 = performance.now();
      let attempt = 0;
      let state: RoundState;
      for (;;) {
        attempt++;
        state = await this.#fitRound(round, attempt);
        let reason = `${state.fits.length} of the required ${this.#s.minFitClients} fit results arrived (${state.failures} failed)`;
        if (state.fits.length >= this.#s.minFitClients) {
          try {
            this.#model = await this.#strategy.aggregateFit(round, state.fits, this.#specs!, this.#stageRunner(state));
            break;
          } catch (e) {
            // A multi-stage round that lost too many clients after training is retried like one
            // that never got enough results; it never yields a wrong aggregate.
            if (state.roundId === null || !isCipherMLError(e, 'CIPHERML_E_ROUND_FAILED')) throw e;
            reason = e.problem;
          }
        }
        if (attempt >= this.#s.maxRoundAttempts) {
          this.#finish(`round ${round} failed: ${reason}`);
          throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `round ${round} failed after ${attempt} attempts: ${reason}`, { param: 'min-fit-clients', details: { round, attempts: attempt } });
        }
        this.#emit({ type: 'round-retry', round, reason });
        await this.#waitForWorkers(this.#s.minFitClients, this.#s.roundTimeoutMs).catch(() => undefined);
      }
      const evalRound = round % this.#s.evalEvery === 0 || round === this.#s.numRounds;
      const fed = evalRound ? await this.#evaluateRound(round) : null;
      const plain = this.#strategy.plaintext(this.#model);
      const srv = evalRound && plain !== null && this.#opts.evaluate !== undefined ? await this.#opts.evaluate(plain) : null;
      const trainLosses = state.fits.map((f) => f.metrics['loss']).filter((x): x is number => x !== undefined);
      const record: RoundRecord = {
        round,
        attempts: attempt,
        fitResults: state.fits.length,
        fitFailures: state.failures,
        trainLoss: trainLosses.length === 0 ? null : trainLosses.reduce((a, b) => a + b, 0) / trainLosses.length,
        federatedLoss: fed?.loss ?? null,
        federatedAccuracy: fed?.accuracy ?? null,
        serverLoss: srv?.loss ?? null,
        serverAccuracy: srv?.accuracy ?? null,
        serverAuc: srv?.auc ?? null,
        bytesIn: state.bytesIn,
        durationMs: performance.now() - t0,
        secagg: state.report,
      };
      this.#history.push(record);
      this.#nextRound = round + 1;
      await this.#checkpoint();
      this.#emit({ type: 'round-end', record });
    }
    const summary = this.#summary();
    this.#finish('training complete');
    this.#emit({ type: 'finished', summary });
    return summary;
  }

  /** Stops serving (after giving workers a moment to collect their finish task). */
  async close(graceMs = 0): Promise<void> {
    if (graceMs > 0) await this.#drainFinish(graceMs);
    if (this.#monitor !== null) clearInterval(this.#monitor);
    for (const s of this.#sessions.values()) s.wake?.();
    await this.#rpc?.close();
    this.#rpc = null;
  }

  async #drainFinish(graceMs: number): Promise<void> {
    const until = Date.now() + graceMs;
    while (Date.now() < until && [...this.#sessions.values()].some((s) => s.alive && s.queue.length > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  #summary(): RunSummary {
    const plain = this.#model === null ? null : this.#strategy.plaintext(this.#model);
    return {
      runId: this.#runId,
      strategy: this.#strategy.name,
      keyHolder: this.#strategy.keyHolder,
      rounds: this.#history.length,
      final: this.#history.at(-1) ?? null,
      history: this.#history,
      runDir: this.#s.runDir,
      model: plain,
    };
  }

  async #wrap<T>(f: () => T | Promise<T>, workerId = ''): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof CipherMLError && workerId !== '') this.#emit({ type: 'rejected', workerId, code: e.code, message: e.message });
      throw toConnectError(e);
    }
  }

  /**
   * Every check runs before any state changes: a refused join leaves the model shape, the
   * initial model and the sessions exactly as they were. The shape is fixed only by an accepted
   * join (or the server's own initial model), and memory for it is bounded by max-message-bytes.
   */
  #join(req: JoinRequest) {
    checkProtocolVersion(req.protocolVersion);
    if (req.workerId === '' || req.workerId.length > 128) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'worker id must be 1–128 characters', { param: 'workerId' });
    const trust = this.#s.trust ?? null;
    if (trust === null) checkToken(this.#s.secret, req.workerId, req.token);
    else verifyRequest(trust, this.#joinGuard, 'worker', req.workerId, SIG_CONTEXT.join, ['join', req.workerId, req.instanceId], req, `join of worker ${JSON.stringify(req.workerId)}`);
    if (this.#finished) throw new CipherMLError('CIPHERML_E_ROUND_CLOSED', 'the run has finished', { param: 'join' });
    if (!(Number(req.numExamples) > 0)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'a worker must hold at least one example', { param: 'numExamples' });
    let first: { specs: TensorSpec[]; model: GlobalModel } | null = null;
    if (this.#specs === null && this.#opts.unsafeNaiveJoin === true) {
      this.#specs = req.model.map((s) => ({ ...s }) as TensorSpec);
      const init = req.initial === undefined ? null : tensorsFromWire(req.initial.tensors, 'initial');
      this.#model = { kind: 'plain', tensors: init ?? zeroModel(this.#specs) };
    } else if (this.#specs === null) {
      checkDeclaredSpecs(req.model, this.#s.maxMessageBytes, 'model');
      const specs = req.model.map((s) => ({ ...s }) as TensorSpec);
      const init = req.initial === undefined ? null : tensorsFromWire(req.initial.tensors, 'initial');
      if (init !== null) assertSameSpecs(specs, specsOf(init), 'initial');
      first = { specs, model: { kind: 'plain', tensors: init ?? zeroModel(specs) } };
    } else {
      assertSameSpecs(this.#specs, req.model, 'model');
      // Initial values are unused once the shape is fixed, but a join carrying invalid ones is
      // refused all the same: whether a join is accepted never depends on who joined first.
      if (req.initial !== undefined) assertSameSpecs(this.#specs, specsOf(tensorsFromWire(req.initial.tensors, 'initial')), 'initial');
    }
    // The token authenticates the id: a worker restarted under the same id (new process,
    // new instance id) replaces its stale session instead of being refused as a duplicate.
    for (const s of this.#sessions.values()) {
      if (s.workerId === req.workerId && s.alive) this.#drop(s, s.instanceId === req.instanceId ? 'rejoined' : 'replaced by a restarted process with the same id');
    }
    if (first !== null) {
      this.#specs = first.specs;
      this.#model = first.model;
    }
    const session: Session = {
      id: randomBytes(16).toString('hex'),
      workerId: req.workerId,
      instanceId: req.instanceId,
      numExamples: Number(req.numExamples),
      lastSeen: Date.now(),
      queue: [],
      wake: null,
      alive: true,
    };
    this.#sessions.set(session.id, session);
    this.#emit({ type: 'joined', workerId: session.workerId, numExamples: session.numExamples, workers: this.#alive().length });
    for (const w of this.#joinWaiters.splice(0)) w();
    const info = this.#info!;
    return create(JoinResponseSchema, {
      sessionId: session.id,
      runId: this.#runId,
      strategy: this.#strategy.name,
      keyHolder: this.#strategy.keyHolder,
      publicKey: info.publicKey,
      ...(info.packing === undefined ? {} : { packing: create(PackingSpecSchema, info.packing) }),
      nextRound: this.#nextRound,
      numRounds: this.#s.numRounds,
      authorityAddress: this.#s.authorityAddress ?? '',
      ...(info.vouch === undefined ? {} : { keySignature: info.vouch.keySignature, keySignerId: info.vouch.keySignerId }),
    });
  }

  #session(sessionId: string): Session {
    const s = this.#sessions.get(sessionId);
    if (s === undefined || !s.alive) throw new CipherMLError('CIPHERML_E_PROTOCOL', 'unknown or expired session; rejoin', { param: 'sessionId' });
    return s;
  }

  #touch(sessionId: string): Session {
    const s = this.#session(sessionId);
    s.lastSeen = Date.now();
    return s;
  }

  async #pull(sessionId: string, waitMs: number, ctx: HandlerContext) {
    const s = this.#touch(sessionId);
    if (s.queue.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(Math.max(waitMs, 0), this.#s.pollWaitMs));
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        s.wake = done;
        ctx.signal.addEventListener('abort', done, { once: true });
      });
      s.wake = null;
      if (!s.alive) throw new CipherMLError('CIPHERML_E_PROTOCOL', 'session dropped; rejoin', { param: 'sessionId' });
      s.lastSeen = Date.now();
    }
    const task = s.queue.shift() ?? create(TaskSchema, { taskId: '', round: this.#round?.round ?? 0, body: { case: 'wait', value: {} } });
    return create(PullTaskResponseSchema, { task });
  }

  #push(req: PushResultRequest) {
    const s = this.#touch(req.sessionId);
    const st = this.#round;
    const open = st?.open.get(req.taskId);
    if (st === null || open === undefined || st.round !== req.round || open.sessionId !== s.id) {
      throw new CipherMLError('CIPHERML_E_ROUND_CLOSED', `no open task ${req.taskId} for round ${req.round}`, { param: 'taskId', details: { round: req.round, current: st?.round ?? null } });
    }
    st.open.delete(req.taskId);
    try {
      const body = req.body;
      if (body.case === 'error') {
        st.failures++;
        this.#emit({ type: 'rejected', workerId: s.workerId, code: body.value.code, message: `worker reported: ${body.value.message}` });
      } else if (open.kind === 'fit' && body.case === 'fit') {
        st.bytesIn += body.value.model === undefined ? 0 : body.value.model.kind.case === 'encrypted' ? body.value.model.kind.value.packed.length : body.value.model.kind.case === 'plain' ? body.value.model.kind.value.tensors.reduce((a, t) => a + t.data.length, 0) : 0;
        st.bytesIn += body.value.secaggKeys === undefined ? 0 : body.value.secaggKeys.cPk.length + body.value.secaggKeys.sPk.length + body.value.secaggKeys.signature.length + body.value.secaggKeys.commitment.length;
        const decoded = this.#strategy.checkFitResult(body.value, this.#specs!, `result from ${s.workerId}`);
        st.fits.push({ workerId: s.workerId, numExamples: Number(body.value.numExamples), weight: open.weight, decoded, metrics: { ...body.value.metrics } });
      } else if (open.kind === 'secagg' && body.case === 'secagg') {
        st.bytesIn += secAggResultBytes(body.value);
        open.accept!(body.value);
      } else if (open.kind === 'evaluate' && body.case === 'evaluate') {
        if (!Number.isFinite(body.value.loss)) throw new CipherMLError('CIPHERML_E_NOT_FINITE', 'evaluation loss is not finite', { param: 'loss' });
        st.evals.push({ numExamples: Number(body.value.numExamples), loss: body.value.loss, metrics: { ...body.value.metrics } });
      } else {
        throw new CipherMLError('CIPHERML_E_PROTOCOL', `a ${open.kind} task cannot be answered with "${body.case ?? 'nothing'}"`, { param: 'body' });
      }
    } catch (e) {
      st.failures++;
      throw e;
    } finally {
      if (st.open.size === 0) st.settle?.();
    }
    return {};
  }

  #alive(): Session[] {
    return [...this.#sessions.values()].filter((s) => s.alive);
  }

  #drop(s: Session, reason: string): void {
    if (!s.alive) return;
    s.alive = false;
    this.#sessions.delete(s.id);
    s.wake?.();
    const st = this.#round;
    if (st !== null) {
      for (const [id, t] of st.open) {
        if (t.sessionId === s.id) {
          st.open.delete(id);
          st.failures++;
        }
      }
      if (st.open.size === 0) st.settle?.();
    }
    this.#emit({ type: 'dropped', workerId: s.workerId, reason });
  }

  #reap(): void {
    const now = Date.now();
    for (const s of this.#alive()) {
      if (s.wake === null && now - s.lastSeen > this.#s.staleAfterMs) this.#drop(s, `no contact for ${Math.round((now - s.lastSeen) / 1000)} s`);
    }
  }

  async #waitForWorkers(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#alive().length < count) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `${this.#alive().length} of ${count} required workers joined within ${Math.round(timeoutMs / 1000)} s`, {
          param: 'min-available-clients',
        });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.#joinWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  #sample(fraction: number, min: number): Session[] {
    const pool = this.#alive();
    const k = Math.min(pool.length, Math.max(min, Math.ceil(fraction * pool.length)));
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(this.#rand() * (i + 1));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, k).sort((a, b) => a.workerId.localeCompare(b.workerId));
  }

  async #collect(st: RoundState, timeoutMs: number = this.#s.roundTimeoutMs): Promise<void> {
    if (st.open.size === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      st.settle = () => {
        clearTimeout(t);
        resolve();
      };
    });
    st.settle = null;
    st.failures += st.open.size;
    st.open.clear();
  }

  #newRound(round: number): RoundState {
    const st: RoundState = { round, open: new Map(), fits: [], evals: [], failures: 0, bytesIn: 0, settle: null, roundId: null, report: null };
    this.#round = st;
    return st;
  }

  async #fitRound(round: number, attempt: number): Promise<RoundState> {
    const st = this.#newRound(round);
    const selected = this.#sample(this.#s.fractionFit, this.#s.minFitClients);
    const total = selected.reduce((a, s) => a + s.numExamples, 0);
    const payload = this.#strategy.payload(this.#model!);
    if (this.#strategy.beginFit !== undefined) st.roundId = `${this.#runId.slice(0, 8)}-r${round}a${attempt}`;
    const secagg = st.roundId === null ? undefined : this.#strategy.beginFit!(st.roundId, selected.length, this.#specs!);
    this.#emit({ type: 'round-start', round, attempt, selected: selected.map((s) => s.workerId) });
    for (const s of selected) {
      const taskId = `${this.#runId.slice(0, 8)}-r${round}a${attempt}-fit-${s.workerId}`;
      const weight = s.numExamples / total;
      st.open.set(taskId, { taskId, sessionId: s.id, workerId: s.workerId, kind: 'fit', weight });
      const fit = { model: payload, weight, config: { ...this.#s.fitConfig, round: String(round) }, ...(secagg === undefined ? {} : { secagg }) };
      this.#enqueue(s, create(TaskSchema, { taskId, round, body: { case: 'fit', value: fit } }));
    }
    await this.#collect(st);
    return st;
  }

  /** The stage runner of a multi-stage round: stage tasks ride the round's open-task machinery. */
  #stageRunner(st: RoundState): StageRunner {
    return {
      roundId: st.roundId ?? '',
      run: async (stage: string, tasks: ReadonlyMap<string, SecAggStageTask>, timeoutMs: number, accept: (workerId: string, result: SecAggStageResult) => void) => {
        const t0 = performance.now();
        const answered = new Set<string>();
        const rejected = new Set<string>();
        const failuresBefore = st.failures;
        for (const [workerId, body] of tasks) {
          const s = this.#alive().find((x) => x.workerId === workerId);
          if (s === undefined) continue;
          const taskId = `${st.roundId}-${stage}-${workerId}`;
          st.open.set(taskId, {
            taskId,
            sessionId: s.id,
            workerId,
            kind: 'secagg',
            weight: 0,
            accept: (result) => {
              rejected.add(taskId);
              accept(workerId, result);
              rejected.delete(taskId);
              answered.add(workerId);
            },
          });
          this.#enqueue(s, create(TaskSchema, { taskId, round: st.round, body: { case: 'secagg', value: body } }));
        }
        const sent = new Map([...st.open].filter(([, t]) => t.kind === 'secagg').map(([id, t]) => [id, t.sessionId]));
        await this.#collect(st, timeoutMs);
        // Dropouts after training are the protocol's business (its report), not fit failures.
        st.failures = failuresBefore;
        // A client silent for a whole stage window has dropped out: forget its session so the
        // next attempt does not wait for it (a live worker rejoins on its next poll).
        for (const [taskId, sessionId] of sent) {
          const s = this.#sessions.get(sessionId);
          if (s !== undefined && !answered.has(s.workerId) && !rejected.has(taskId)) this.#drop(s, `no answer to ${stage} within cipher-time-window`);
        }
        this.#emit({ type: 'stage', round: st.round, stage, answered: answered.size, expected: tasks.size, ms: performance.now() - t0 });
        return answered;
      },
      report: (report) => {
        st.report = report;
      },
    };
  }

  async #evaluateRound(round: number): Promise<{ loss: number; accuracy?: number } | null> {
    if (this.#s.fractionEvaluate <= 0) return null;
    const st = this.#newRound(round);
    const selected = this.#sample(this.#s.fractionEvaluate, this.#s.minEvaluateClients);
    const payload = this.#strategy.payload(this.#model!);
    for (const s of selected) {
      const taskId = `${this.#runId.slice(0, 8)}-r${round}-eval-${s.workerId}`;
      st.open.set(taskId, { taskId, sessionId: s.id, workerId: s.workerId, kind: 'evaluate', weight: 0 });
      this.#enqueue(s, create(TaskSchema, { taskId, round, body: { case: 'evaluate', value: { model: payload, config: { round: String(round) } } } }));
    }
    await this.#collect(st);
    if (st.evals.length < Math.max(1, this.#s.minEvaluateClients)) return null;
    const n = st.evals.reduce((a, e) => a + e.numExamples, 0);
    const loss = st.evals.reduce((a, e) => a + e.loss * e.numExamples, 0) / n;
    const acc = st.evals.every((e) => e.metrics['accuracy'] !== undefined) ? st.evals.reduce((a, e) => a + e.metrics['accuracy']! * e.numExamples, 0) / n : undefined;
    return acc === undefined ? { loss } : { loss, accuracy: acc };
  }

  #enqueue(s: Session, task: Task): void {
    s.queue.push(task);
    s.wake?.();
  }

  #finish(reason: string): void {
    this.#finished = true;
    this.#round = null;
    const payload = this.#model === null ? undefined : this.#strategy.payload(this.#model);
    for (const s of this.#alive()) {
      this.#enqueue(s, create(TaskSchema, { taskId: `finish-${s.workerId}`, round: this.#nextRound - 1, body: { case: 'finish', value: { ...(payload === undefined ? {} : { model: payload }), reason } } }));
    }
  }

  #checkpointPath(): string {
    return join(this.#s.runDir, 'checkpoint.json');
  }

  #loadCheckpoint(): void {
    const path = this.#checkpointPath();
    const store = this.#opts.checkpointStore;
    if (store === undefined && !existsSync(path)) return;
    const text = store === undefined ? readFileSync(path, 'utf8') : store.read();
    if (text === null) return;
    let ck: Checkpoint;
    try {
      ck = JSON.parse(text) as Checkpoint;
    } catch (e) {
      throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `${path} is not valid JSON (${(e as Error).message}); move it away to start a new run`, { param: 'run-dir', cause: e });
    }
    if (ck.version !== 1 || ck.strategy !== this.#strategy.name || ck.keyHolder !== this.#strategy.keyHolder) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${path} belongs to a ${ck.strategy}/${ck.keyHolder} run, this server runs ${this.#strategy.name}/${this.#strategy.keyHolder}; use another run-dir`, { param: 'run-dir' });
    }
    this.#runId = ck.runId;
    this.#nextRound = ck.round + 1;
    this.#history = ck.history;
    this.#specs = ck.specs.map((s) => ({ name: s.name, shape: s.shape }) as TensorSpec);
    this.#model =
      ck.model.kind === 'plain'
        ? { kind: 'plain', tensors: ck.model.tensors.map((t) => ({ name: t.name, shape: t.shape, values: b64ToF64(t.values) })) }
        : { kind: 'encrypted', packed: Buffer.from(ck.model.packed, 'base64'), specs: this.#specs, weightTotal: ck.model.weightTotal };
    this.#emit({ type: 'resumed', round: ck.round });
  }

  async #checkpoint(): Promise<void> {
    const m = this.#model!;
    const ck: Checkpoint = {
      version: 1,
      runId: this.#runId,
      round: this.#nextRound - 1,
      strategy: this.#strategy.name,
      keyHolder: this.#strategy.keyHolder,
      specs: this.#specs!.map((s) => ({ name: s.name, shape: [...s.shape] })),
      model: m.kind === 'plain' ? { kind: 'plain', tensors: m.tensors.map((t) => ({ name: t.name, shape: [...t.shape], values: f64ToB64(t.values) })) } : { kind: 'encrypted', packed: Buffer.from(m.packed).toString('base64'), weightTotal: m.weightTotal },
      history: this.#history,
    };
    if (this.#opts.checkpointStore === undefined) await writeFileSafely(this.#checkpointPath(), JSON.stringify(ck), { overwrite: true });
    else await this.#opts.checkpointStore.write(JSON.stringify(ck));
    await writeFileSafely(join(this.#s.runDir, 'history.json'), `${JSON.stringify({ runId: this.#runId, strategy: this.#strategy.name, keyHolder: this.#strategy.keyHolder, rounds: this.#history }, null, 2)}\n`, { overwrite: true });
    await writeFileSafely(join(this.#s.runDir, 'history.svg'), historySvg(this.#history, `${this.#strategy.name} FedAvg (key holder: ${this.#strategy.keyHolder})`), { overwrite: true });
  }
}

/**
 * Loss and accuracy per round as two stacked line charts. Series without data in this mode (e.g.
 * server validation when the workers hold the key) get no legend entry; rounds with dropouts or
 * retried attempts are marked.
 */
export function historySvg(history: readonly RoundRecord[], title: string): string {
  const pts = (f: (r: RoundRecord) => number | null) => history.map((r) => [r.round, f(r) ?? Number.NaN] as const);
  const droppedIn = (r: RoundRecord): string[] => {
    const d = r.secagg?.['dropped'];
    return Array.isArray(d) ? d.map(String) : [];
  };
  const marks = history.flatMap((r) => [
    ...(droppedIn(r).length > 0 ? [{ x: r.round, label: `dropout: ${droppedIn(r).join(', ')}` }] : []),
    ...(r.fitFailures > 0 ? [{ x: r.round, label: `${r.fitFailures} failed` }] : []),
    ...(r.attempts > 1 ? [{ x: r.round, label: `retried ×${r.attempts - 1}` }] : []),
  ]);
  return stackedChartsSvg([
    {
      title: `${title}: loss per round`,
      xLabel: 'round',
      marks,
      series: [
        { name: 'train loss (workers)', points: pts((r) => r.trainLoss) },
        { name: 'federated eval loss', points: pts((r) => r.federatedLoss) },
        { name: 'server validation loss', points: pts((r) => r.serverLoss) },
      ],
    },
    {
      title: `${title}: accuracy per round`,
      xLabel: 'round',
      marks,
      series: [
        { name: 'federated eval accuracy', points: pts((r) => r.federatedAccuracy) },
        { name: 'server validation accuracy', points: pts((r) => r.serverAccuracy) },
      ],
    },
  ]);
}
