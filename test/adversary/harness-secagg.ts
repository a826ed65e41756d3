import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import type { Interceptor } from '@connectrpc/connect';
import { defences, resetDefences } from '../../src/core/defences.ts';
import { Roster, generateIdentity, publicIdentity } from '../../src/core/identity.ts';
import { PushResultRequestSchema } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { SecAggFedAvg, type SecAggServerAdversary, type SecAggSettings } from '../../src/fl/secagg.ts';
import { FlServer, type RunSummary, type ServerEvent } from '../../src/fl/server.ts';
import { createRpcTransport } from '../../src/fl/transport.ts';
import { runWorker, type FlClient, type WorkerEvent, type WorkerStage } from '../../src/fl/worker.ts';
import type { SecurityPolicy } from '../../src/secagg/params.ts';
import { SECAGG_TEST_HOOKS } from '../../src/secagg/testing.ts';

/**
 * Malicious-server harness for secure aggregation: a real FlServer (SecAggFedAvg with an
 * adversary that rewrites what it sends) and real workers (runWorker with identities and the
 * pinned roster), connected by ConnectRPC over HTTP/2 on loopback. Every request the server
 * receives is recorded as wire bytes (the workers' client-side interceptor sees exactly what
 * leaves them).
 */

/** Options of one run. */
export interface SecAggRun {
  readonly workers?: number;
  readonly params?: number;
  readonly settings?: Partial<SecAggSettings>;
  readonly adversary?: SecAggServerAdversary;
  /** Workers with an identity (actively secure variant); default true. */
  readonly active?: boolean;
  readonly dropAt?: ReadonlyMap<string, { readonly round: number; readonly stage: WorkerStage }>;
  /** Build without the defence under test (test hooks); default none. */
  readonly broken?: 'masks' | 'checks' | 'range' | 'seed-reveal';
  /** The workers' security policy (default: DEFAULT_SECURITY_POLICY). */
  readonly policy?: SecurityPolicy;
  /** A malicious client: rewrites its own quantized input before masking. */
  readonly corrupt?: (workerId: string, input: Uint32Array) => void;
}

/** What a run produced. */
export interface SecAggRunResult {
  /** The server's summary, or its error when the round failed. */
  readonly server: RunSummary | Error;
  readonly serverEvents: readonly ServerEvent[];
  readonly workerEvents: ReadonlyMap<string, readonly WorkerEvent[]>;
  /** Wire bytes of every request the server received. */
  readonly received: readonly Uint8Array[];
  /** Each worker's quantized input (what must never reach the server). */
  readonly quantized: ReadonlyMap<string, Uint32Array>;
  /** Each worker's trained parameters (float64). */
  readonly updates: ReadonlyMap<string, Float64Array>;
}

/** Deterministic synthetic model values in [−1, 1) per worker and round (xorshift32). */
export function valuesOf(seed: number, n: number): Float64Array {
  let x = (seed * 2654435761) >>> 0 || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

function syntheticClient(index: number, params: number, sink: Map<string, Float64Array>, id: string): FlClient {
  return {
    numExamples: () => 100,
    getParameters: () => [{ name: 'w', shape: [params], values: new Float64Array(params) }],
    fit: async (_p, config) => {
      const values = valuesOf(index * 1000 + Number(config['round'] ?? 1), params);
      sink.set(id, values);
      return { parameters: [{ name: 'w', shape: [params], values }], numExamples: 100 };
    },
    evaluate: async () => ({ loss: 0, numExamples: 100 }),
  };
}

function recorder(sink: Uint8Array[]): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) sink.push(toBinary(req.method.input, req.message));
    return next(req);
  };
}

const DEFAULT_SETTINGS: SecAggSettings = {
  mode: 'pw',
  clippingRange: 8,
  quantizationRange: 2 ** 22,
  modulusRange: 0,
  threshold: 0,
  shareSecretsRatio: 0.5,
  stageTimeoutMs: 5000,
  numShares: 0,
  collusion: false,
  onViolation: 'refuse',
};

/**
 * Runs one secure-aggregation round over loopback gRPC.
 *
 * @example
 * ```ts
 * const r = await runSecAgg({ adversary: { round: (x) => ({ ...x, threshold: 1 }) } });
 * refusals(r); // [{ worker: 'w1', code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', … }, …]
 * ```
 */
export async function runSecAgg(o: SecAggRun = {}): Promise<SecAggRunResult> {
  const n = o.workers ?? 5;
  const params = o.params ?? 64;
  const dir = await mkdtemp(join(tmpdir(), 'cipherml-adv-secagg-'));
  const ids = Array.from({ length: n }, (_, i) => `w${i + 1}`);
  const identities = new Map(ids.map((id) => [id, generateIdentity('worker', id)]));
  const peers = new Roster([...identities.values()].map((i) => publicIdentity(i)));
  const serverEvents: ServerEvent[] = [];
  const workerEvents = new Map<string, WorkerEvent[]>(ids.map((id) => [id, []]));
  const received: Uint8Array[] = [];
  const quantized = new Map<string, Uint32Array>();
  const updates = new Map<string, Float64Array>();
  SECAGG_TEST_HOOKS.disableMasks = o.broken === 'masks';
  SECAGG_TEST_HOOKS.disableChecks = o.broken === 'checks';
  SECAGG_TEST_HOOKS.disableRangeCheck = o.broken === 'range';
  defences.secaggSeedReveal = o.broken !== 'seed-reveal';
  SECAGG_TEST_HOOKS.onQuantized = (id, _round, input) => {
    o.corrupt?.(id, input);
    quantized.set(id, input.slice());
  };
  const strategy = new SecAggFedAvg({ ...DEFAULT_SETTINGS, ...o.settings }, o.adversary);
  const server = new FlServer({
    settings: {
      address: '127.0.0.1:0', numRounds: 1, fractionFit: 1, fractionEvaluate: 0, minFitClients: n, minEvaluateClients: 0, minAvailableClients: n,
      roundTimeoutMs: 20_000, joinTimeoutMs: 20_000, evalEvery: 1, runDir: join(dir, 'run'), secret: '', maxMessageBytes: 16 << 20,
      fitConfig: {}, seed: 1, pollWaitMs: 200, maxRoundAttempts: 1,
    },
    strategy,
    onEvent: (e) => serverEvents.push(e),
  });
  try {
    const address = await server.listen();
    const running = server.run().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    const abort = new AbortController();
    const workers = ids.map((id, i) =>
      runWorker({
        workerId: id,
        token: '',
        client: syntheticClient(i + 1, params, updates, id),
        transport: createRpcTransport({ address, maxMessageBytes: 16 << 20, interceptors: [recorder(received)] }),
        pollWaitMs: 200,
        reconnectTimeoutMs: 2000,
        signal: abort.signal,
        onEvent: (e) => workerEvents.get(id)!.push(e),
        ...(o.active === false ? (o.policy === undefined ? {} : { secagg: { policy: o.policy } }) : { secagg: { identity: identities.get(id)!, peers, ...(o.policy === undefined ? {} : { policy: o.policy }) } }),
        ...(o.dropAt?.get(id) === undefined ? {} : { dropAt: o.dropAt.get(id)! }),
      }).catch((e: unknown) => e),
    );
    const result = await running;
    abort.abort();
    await Promise.all(workers);
    return { server: result, serverEvents, workerEvents, received, quantized, updates };
  } finally {
    SECAGG_TEST_HOOKS.disableMasks = false;
    SECAGG_TEST_HOOKS.disableChecks = false;
    SECAGG_TEST_HOOKS.disableRangeCheck = false;
    SECAGG_TEST_HOOKS.onQuantized = null;
    resetDefences();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The typed refusals workers reported, as { worker, code, message }. */
export function refusals(r: SecAggRunResult): { worker: string; code: string; message: string }[] {
  const out: { worker: string; code: string; message: string }[] = [];
  for (const [worker, events] of r.workerEvents) for (const e of events) if (e.type === 'task-failed') out.push({ worker, code: e.code, message: e.message });
  return out;
}

/** The secagg stage answers the server received, decoded, with the sender's session. */
export function stageAnswers(r: SecAggRunResult): { stage: string; bytes: Uint8Array | null }[] {
  const out: { stage: string; bytes: Uint8Array | null }[] = [];
  for (const wire of r.received) {
    let msg;
    try {
      msg = fromBinary(PushResultRequestSchema, wire);
    } catch {
      continue;
    }
    if (msg.body.case === 'secagg') {
      const st = msg.body.value.stage;
      out.push({ stage: st.case ?? 'none', bytes: st.case === 'maskedInput' ? st.value.masked : null });
    }
  }
  return out;
}

/** Little-endian or big-endian bytes of words of `bytesPer` bytes. */
function encodeWords(values: ArrayLike<number>, kind: 'u32' | 'u64' | 'f32' | 'f64', littleEndian: boolean): Buffer {
  const size = kind === 'u32' || kind === 'f32' ? 4 : 8;
  const out = Buffer.alloc(values.length * size);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (kind === 'u32') view.setUint32(i * 4, v >>> 0, littleEndian);
    else if (kind === 'u64') view.setBigUint64(i * 8, BigInt(Math.trunc(v)), littleEndian);
    else if (kind === 'f32') view.setFloat32(i * 4, v, littleEndian);
    else view.setFloat64(i * 8, v, littleEndian);
  }
  return out;
}

/**
 * Searches every byte the server received for any 16-byte run of a worker's update: its
 * quantized words as uint32 or uint64 in either endianness, and its parameters (and weight ·
 * parameters) as float32 or float64 in either endianness. Returns the encodings found.
 */
export function findLeaks(r: SecAggRunResult, weight = 1 / (r.quantized.size || 1)): string[] {
  const hay = Buffer.concat(r.received.map((b) => Buffer.from(b)));
  const windows = new Set<string>();
  for (let o = 0; o + 16 <= hay.length; o++) windows.add(hay.toString('latin1', o, o + 16));
  const found = new Set<string>();
  const probe = (name: string, bytes: Buffer) => {
    for (let o = 0; o + 16 <= bytes.length; o += 4) if (windows.has(bytes.toString('latin1', o, o + 16))) return found.add(name);
    return undefined;
  };
  for (const [, q] of r.quantized) {
    for (const le of [true, false]) {
      probe(`uint32 ${le ? 'LE' : 'BE'}`, encodeWords(q, 'u32', le));
      probe(`uint64 ${le ? 'LE' : 'BE'}`, encodeWords(q, 'u64', le));
    }
  }
  for (const [, u] of r.updates) {
    const weighted = u.map((v) => v * weight);
    for (const le of [true, false]) {
      for (const [name, values] of [['parameters', u], ['weight·parameters', weighted]] as const) {
        probe(`${name} float32 ${le ? 'LE' : 'BE'}`, encodeWords(values, 'f32', le));
        probe(`${name} float64 ${le ? 'LE' : 'BE'}`, encodeWords(values, 'f64', le));
      }
    }
  }
  return [...found];
}

/** Upper α quantile of χ²(df) by the Wilson–Hilferty approximation; z is the standard normal upper-α quantile. */
export function chiSquareCritical(df: number, z: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

/** z for α = 1e-6 (upper tail of N(0, 1)). */
export const Z_ALPHA_1E6 = 4.753424;

/**
 * Pearson's χ² statistic of a masked vector's words (each in [0, 2^modulusBits)) over 16 equal
 * buckets of their top 4 bits: uniform words give χ²(15).
 */
export function chiSquareTopBits(words: Uint32Array, modulusBits: number): number {
  const buckets = new Float64Array(16);
  const shift = modulusBits - 4;
  for (const w of words) buckets[Math.min(15, Math.floor(w / 2 ** shift))]! += 1;
  const expected = words.length / 16;
  return buckets.reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
}
