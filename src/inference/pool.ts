import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import TinyQueue from 'tinyqueue';
import type { CiphertextFile, CiphertextRecord, CkksContext, CkksVector } from '../ckks/index.ts';
import { assembleCiphertexts, checkCiphertextFile, deserializePublicContext, deserializeSecretKey, loadCiphertext, serializeCiphertexts, splitCiphertextFile } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import type { BatchInstr, BatchProgram } from './batch.ts';
import { instrOperands, recordBatch } from './batch.ts';
import type { TensorMeta } from './meta.ts';
import { batchLayout, checkBatchInput, checkInputShape, readMeta, singleLayout } from './meta.ts';
import type { Graph } from './onnx.ts';
import type { PoolMessage, RunResult } from './pool-worker.ts';

/**
 * Batch-plan inference on worker threads, each with its own SEAL instance (SEAL in WebAssembly
 * is single-threaded). The batch plan is recorded once per model as a straight-line program
 * ({@link recordBatch}) and split over the threads by {@link schedulePool}; each thread runs its
 * part in one shared depth-first order, sending a value to the threads that need it as soon as it
 * is made (the main thread forwards it) and waiting only for values it needs and does not have.
 * No barriers, and a value is freed after its last use on a thread, so a convolutional layer is
 * never held whole (LeNet-5 at N = 16384: 4,704 conv1 outputs of 1.3 MiB each).
 */

/**
 * Cost units: one plaintext-scalar product of a linear combination (≈ 2 ms at N = 16384 and 14
 * primes here). A finished ciphertext product (relinearization and rescale: dozens of NTTs) was
 * measured at 212 ms against 1.98 ms a term at that level (docs/inference.md), hence ≈ 100; an
 * unfinished one is the tensor product only, and a finishing sum pays the relinearization and
 * rescale once. Under-counting products by 15× (6 units) let the assignment hand one thread a
 * run of products while the other waited for its results for minutes (LeNet-5 Relu).
 */
const COST = { mul: 100, mulUnfinished: 2, finish: 100, toLevel: 0.5, const: 40, copy: 0.1, add: 0.1, move: 1.5 } as const;

function cost(ins: BatchInstr): number {
  switch (ins.op) {
    case 'lc':
      return ins.ins.length + 0.5;
    case 'sum':
      return COST.add * (ins.ins.length - 1) + COST.copy + (ins.finish === true ? COST.finish : 0);
    case 'mul':
      return ins.finish === false ? COST.mulUnfinished : COST.mul;
    case 'toLevel':
      return COST.toLevel;
    case 'const':
      return COST.const;
    case 'copy':
      return COST.copy;
  }
}


/**
 * What one thread runs: its instructions in execution order (the restriction of one global
 * topological order to this thread, so no two threads can wait on each other: a thread waiting
 * for a value waits for an instruction earlier in that order), the program inputs it loads at
 * first use, where its results go, and when it frees what it holds.
 */
export interface ThreadPlan {
  readonly instrs: BatchInstr[];
  /** Program inputs (ids below `program.inputs`) this thread reads. */
  readonly inputs: number[];
  /** Value id ↦ threads it is sent to as soon as it is made (−1: the caller, an output). */
  readonly send: [number, number[]][];
  /** frees[i]: values this thread frees after instruction i (their last use here). */
  readonly frees: number[][];
  /** Values it receives from other threads. */
  readonly receives: number[];
  cost: number;
}

/** A program split over threads. */
export interface PoolSchedule {
  readonly threads: number;
  readonly plans: readonly ThreadPlan[];
  /** Sum of instruction costs. */
  readonly totalCost: number;
  /** Simulated finish time of the last thread, waits included (see schedulePool). */
  readonly spanCost: number;
  /** Ciphertexts moved between threads. */
  readonly moves: number;
}

/**
 * A topological order that sweeps the image: of the instructions whose operands are made, the
 * one whose value depends on the smallest input index runs first (ties: program order). A
 * convolution's output at a position is made as soon as its window is, so a layer's values live
 * for a band of rows instead of the whole image, whichever channel order the model's tensors
 * have, and the chunks of a split dense layer ({@link recordBatch}) run as soon as their region
 * of the image is done. The depth-first order from the outputs it replaces walked LeNet-5's
 * conv2 channel by channel and held all 4,704 pooled first-layer values (≈ 14 GiB) until the
 * last channel.
 */
function sweepOrder(program: BatchProgram): BatchInstr[] {
  const key = new Map<number, number>();
  for (let i = 0; i < program.inputs; i++) key.set(i, i);
  const pending = new Map<number, number>();
  const users = new Map<number, number[]>();
  program.instrs.forEach((ins, at) => {
    const ops = instrOperands(ins);
    key.set(ins.out, Math.min(Infinity, ...ops.map((id) => key.get(id)!)));
    let waits = 0;
    for (const id of ops) {
      if (id < program.inputs) continue;
      waits++;
      const u = users.get(id);
      if (u === undefined) users.set(id, [at]);
      else u.push(at);
    }
    pending.set(at, waits);
  });
  const heap = new TinyQueue<number>([], (a, b) => key.get(program.instrs[a]!.out)! - key.get(program.instrs[b]!.out)! || a - b);
  program.instrs.forEach((_, at) => {
    if (pending.get(at) === 0) heap.push(at);
  });
  const order: BatchInstr[] = [];
  while (heap.length > 0) {
    const at = heap.pop()!;
    const ins = program.instrs[at]!;
    order.push(ins);
    for (const u of users.get(ins.out) ?? []) {
      const left = pending.get(u)! - 1;
      pending.set(u, left);
      if (left === 0) heap.push(u);
    }
  }
  if (order.length !== program.instrs.length) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the batch program reads a value no instruction makes', { param: 'program' });
  return order;
}

/**
 * Splits a batch program over `threads` threads. Every thread runs its instructions in one
 * shared order that sweeps the image ({@link sweepOrder}), with no barrier, waiting only for
 * values another thread makes. Assignment follows that order (Graham's list scheduling with
 * communication cost): each instruction goes to the thread where it would finish first, given
 * when that thread is free and when its operands are there (a ciphertext another thread holds
 * costs its serialization). `spanCost` is that simulated finish time: it counts the waits that
 * the execution order imposes, which a per-thread sum of costs does not (an assignment balanced
 * per wave of the dependency graph left one thread waiting for minutes while the other ran a
 * layer's worth of conv2 combinations that came first in the sweep).
 *
 * @example
 * ```ts
 * const s = schedulePool(recordBatch(graph, ctx.maxLevel), 2);
 * s.totalCost / s.spanCost; // ≈ 2: the speed-up the schedule allows
 * ```
 */
export function schedulePool(program: BatchProgram, threads: number): PoolSchedule {
  assertIntegerInRange(threads, 'threads', 1, 64);
  const order = sweepOrder(program);
  const holders = new Map<number, Set<number>>();
  const owner = new Map<number, number>();
  const ready = new Map<number, number>();
  const free = new Array<number>(threads).fill(0);
  let totalCost = 0;
  let moves = 0;
  for (const ins of order) {
    const ops = instrOperands(ins).filter((id) => id >= program.inputs);
    let best = 0;
    let bestFinish = Infinity;
    let bestMissing = Infinity;
    for (let t = 0; t < threads; t++) {
      let start = free[t]!;
      let missing = 0;
      for (const id of ops) {
        const here = holders.get(id)!.has(t);
        if (!here) missing++;
        start = Math.max(start, ready.get(id)! + (here ? 0 : COST.move));
      }
      const finish = start + cost(ins);
      if (finish < bestFinish || (finish === bestFinish && missing < bestMissing)) [best, bestFinish, bestMissing] = [t, finish, missing];
    }
    for (const id of ops) {
      const h = holders.get(id)!;
      if (!h.has(best)) {
        h.add(best);
        moves++;
      }
    }
    free[best] = bestFinish;
    ready.set(ins.out, bestFinish);
    holders.set(ins.out, new Set([best]));
    owner.set(ins.out, best);
    totalCost += cost(ins);
  }
  const plans: ThreadPlan[] = Array.from({ length: threads }, () => ({ instrs: [], inputs: [], send: [], frees: [], receives: [], cost: 0 }));
  const sendTo = new Map<number, Set<number>>();
  const lastUse: Map<number, number>[] = Array.from({ length: threads }, () => new Map());
  const seenInput: Set<number>[] = Array.from({ length: threads }, () => new Set());
  const seenRemote: Set<number>[] = Array.from({ length: threads }, () => new Set());
  for (const ins of order) {
    const t = owner.get(ins.out)!;
    const plan = plans[t]!;
    const at = plan.instrs.length;
    for (const id of instrOperands(ins)) {
      if (id < program.inputs) {
        if (!seenInput[t]!.has(id)) {
          seenInput[t]!.add(id);
          plan.inputs.push(id);
        }
      } else if (owner.get(id) !== t && !seenRemote[t]!.has(id)) {
        seenRemote[t]!.add(id);
        plan.receives.push(id);
        const to = sendTo.get(id) ?? new Set<number>();
        sendTo.set(id, to);
        to.add(t);
      }
      lastUse[t]!.set(id, at);
    }
    plan.instrs.push(ins);
    plan.cost += cost(ins);
    // A value nobody here uses later is freed right after it is made (and sent).
    if (!lastUse[t]!.has(ins.out)) lastUse[t]!.set(ins.out, at);
  }
  for (const id of program.outputs) {
    if (id < program.inputs) continue;
    const to = sendTo.get(id) ?? new Set<number>();
    sendTo.set(id, to);
    to.add(-1);
  }
  for (const [id, to] of sendTo) plans[owner.get(id)!]!.send.push([id, [...to]]);
  plans.forEach((plan, t) => {
    for (let i = 0; i < plan.instrs.length; i++) plan.frees.push([]);
    for (const [id, i] of lastUse[t]!) plan.frees[i]!.push(id);
  });
  return { threads, plans, totalCost, spanCost: Math.max(...free), moves };
}

/** Options of {@link InferencePool.inferBytes}. */
export interface PoolInferOptions {
  /** Progress: instructions finished (over all threads and chunks), in whole percent steps. */
  readonly onProgress?: (done: number, total: number, what: string) => void;
}

/** `threadHeapMiB`: its default and range (MiB). */
export const THREAD_HEAP_MIB = { default: 1024, min: 64, max: 3584 } as const;

/** Options of {@link InferencePool.create}. */
export interface InferencePoolOptions {
  /** Worker threads (default: the machine's cores). */
  readonly threads?: number;
  /**
   * MiB of ciphertexts each thread keeps in SEAL's heap (default 1024, range 64–3584:
   * {@link THREAD_HEAP_MIB}); values beyond it wait serialized in a temporary folder (see
   * pool-worker.ts, Spill).
   * SEAL keeps freed memory for ciphertexts of the same size only, and its heap was measured at
   * 2–3.8 times the ciphertexts it held (LeNet-5 Relu: 4,096 MiB of WebAssembly memory with
   * 2,045 MiB held; 3,863 MiB with 1,023 MiB), so the budget does not bound the heap; past
   * 3,840 MiB a run stops with CIPHERML_E_HE_HEAP_EXHAUSTED instead of spinning at the limit.
   */
  readonly threadHeapMiB?: number;
  /** @internal Test hook: stop a run past this much WebAssembly memory (MiB) instead of 3,840. */
  readonly wasmLimitMiB?: number;
}

/** What the threads reported for the last chunk run: spills, reloads and peak heap bytes, per thread. */
export interface PoolRunStats {
  readonly spills: number;
  readonly reloads: number;
  readonly peakHeapBytes: number;
  /** The thread's SEAL WebAssembly memory (never shrinks; at most 4 GiB). */
  readonly wasmBytes: number;
}

/** A value a thread made for others (see pool-worker.ts). */
interface Forward {
  readonly id: number;
  readonly record: CiphertextRecord;
  readonly to: readonly number[];
}

interface PoolThread {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>;
  dead?: CipherMLError;
}

/**
 * Starts `threads` (default: the cores) threads and sends each `init`; with `ctx` (the caller's
 * own copy of the key set) deleted if they fail to start.
 */
async function startThreads(threads: number | undefined, init: PoolMessage, ctx: CkksContext): Promise<Threads> {
  const n = threads ?? availableParallelism();
  try {
    assertIntegerInRange(n, 'threads', 1, 64);
    const t = new Threads(n);
    try {
      await Promise.all(t.list.map((_, i) => t.call(i, init)));
    } catch (e) {
      await t.close();
      throw e;
    }
    return t;
  } catch (e) {
    ctx.delete();
    throw e;
  }
}

/** Worker threads running pool-worker.ts, each addressed directly (they hold state). */
class Threads {
  readonly list: PoolThread[];
  /** Receives the values threads send while running a program, and their progress. */
  onForward: ((from: number, f: Forward) => void) | undefined;
  onProgress: ((from: number, done: number) => void) | undefined;
  #next = 1;
  #closed = false;

  constructor(n: number) {
    const url = new URL(import.meta.url.endsWith('.ts') ? './pool-worker.ts' : './pool-worker.js', import.meta.url);
    this.list = Array.from({ length: n }, () => ({ worker: new Worker(url), pending: new Map() }));
    this.list.forEach((t, i) => this.#wire(t, i));
  }

  /** Posts a message that expects no reply. */
  post(i: number, msg: PoolMessage, transfer: ArrayBuffer[] = []): void {
    const t = this.list[i]!;
    if (t.dead === undefined) t.worker.postMessage({ id: 0, msg }, transfer);
  }

  call(i: number, msg: PoolMessage, transfer: ArrayBuffer[] = []): Promise<unknown> {
    const t = this.list[i]!;
    if (t.dead !== undefined) return Promise.reject(t.dead);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      t.pending.set(id, { resolve, reject });
      t.worker.postMessage({ id, msg }, transfer);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.list.map((t) => t.worker.terminate()));
  }

  #wire(t: PoolThread, index: number): void {
    t.worker.on('message', (reply: { id: number; ok: boolean; result?: unknown; error?: { code: string; message: string; param?: string }; forward?: Forward; progress?: number }) => {
      if (reply.forward !== undefined) return this.onForward?.(index, reply.forward);
      if (reply.progress !== undefined) return this.onProgress?.(index, reply.progress);
      const p = t.pending.get(reply.id);
      if (p === undefined) return;
      t.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(CipherMLError.revive(reply.error ?? { code: 'CIPHERML_E_WORKER_FAILED', message: 'a pool thread failed without a message' }));
    });
    const fail = (err: unknown): void => {
      t.dead = new CipherMLError('CIPHERML_E_WORKER_FAILED', `pool thread died: ${err instanceof Error ? err.message : String(err)}`, { param: 'pool', cause: err });
      for (const p of t.pending.values()) p.reject(t.dead);
      t.pending.clear();
    };
    t.worker.on('error', fail);
    t.worker.on('exit', (code) => {
      if (!this.#closed) fail(new Error(`exited with code ${code}`));
    });
  }
}

/**
 * Worker threads serving batch-packed encrypted inference with one public key. Start it once and
 * keep it: each thread loads SEAL and the evaluation keys (about a second).
 *
 * @example
 * ```ts
 * await using pool = await InferencePool.create(await readFile('key.pub'), { threads: 2 });
 * const out = await pool.inferBytes(graph, await readFile('input.enc'));
 * ```
 */
export class InferencePool {
  readonly threads: number;
  readonly #startMs: number;
  readonly #ctx: CkksContext;
  readonly #threads: Threads;
  readonly #programs = new WeakMap<Graph, { program: BatchProgram; schedule: PoolSchedule }>();
  readonly #heapBytes: number;
  readonly #wasmLimit: number;
  #lastRun: PoolRunStats[] = [];
  #closed = false;

  private constructor(ctx: CkksContext, threads: Threads, startMs: number, heapBytes: number, wasmLimit: number) {
    this.#ctx = ctx;
    this.#threads = threads;
    this.threads = threads.list.length;
    this.#startMs = startMs;
    this.#heapBytes = heapBytes;
    this.#wasmLimit = wasmLimit;
  }

  /**
   * Per thread, what its heap budget cost in the last chunk run.
   *
   * @example
   * ```ts
   * await pool.inferBytes(graph, bytes);
   * pool.lastRun.map((t) => t.spills); // [0, 0] when everything fitted
   * ```
   */
  get lastRun(): readonly PoolRunStats[] {
    return this.#lastRun;
  }

  /** Milliseconds spent starting the threads and loading keys. */
  get startMs(): number {
    return this.#startMs;
  }

  /** Starts `threads` threads, each loading `publicKey` (a key.pub file's bytes). */
  static async create(publicKey: Uint8Array, options: InferencePoolOptions = {}): Promise<InferencePool> {
    if (options.threads !== undefined) assertIntegerInRange(options.threads, 'threads', 1, 64);
    const heapMiB = options.threadHeapMiB ?? THREAD_HEAP_MIB.default;
    assertIntegerInRange(heapMiB, 'threadHeapMiB', THREAD_HEAP_MIB.min, THREAD_HEAP_MIB.max);
    if (!(publicKey instanceof Uint8Array)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'publicKey must be the bytes of a key.pub file', { param: 'publicKey' });
    const t0 = performance.now();
    const ctx = await deserializePublicContext(publicKey, 'key', { galoisKeys: false });
    const threads = await startThreads(options.threads, { kind: 'init', publicKey }, ctx);
    return new InferencePool(ctx, threads, performance.now() - t0, heapMiB * 2 ** 20, (options.wasmLimitMiB ?? 4096) * 2 ** 20);
  }

  /**
   * The schedule this pool uses for `graph` (recorded and split once per model).
   *
   * @example
   * ```ts
   * pool.scheduleFor(graph).moves; // ciphertexts the threads exchange per chunk
   * ```
   */
  scheduleFor(graph: Graph): PoolSchedule {
    let p = this.#programs.get(graph);
    if (p === undefined) {
      const program = recordBatch(graph, this.#ctx.maxLevel);
      p = { program, schedule: schedulePool(program, this.threads) };
      this.#programs.set(graph, p);
    }
    return p.schedule;
  }

  /**
   * Runs the model on a batch-packed ciphertext file's bytes; returns the output file's bytes
   * (the same format {@link inferBytes} writes). Single-packed files are refused: they run with
   * `inferBytes`, which needs the Galois keys these threads do not load.
   */
  async inferBytes(graph: Graph, bytes: Uint8Array, options: PoolInferOptions = {}): Promise<Uint8Array> {
    if (this.#closed) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the inference pool is closed', { param: 'pool' });
    return this.inferFile(graph, splitCiphertextFile(bytes, 'input'), options);
  }

  /**
   * {@link inferBytes} on a file already split (e.g. to read its packing first).
   *
   * @example
   * ```ts
   * const file = splitCiphertextFile(bytes);
   * if ((file.meta as { packing: string }).packing === 'batch') await pool.inferFile(graph, file);
   * ```
   */
  async inferFile(graph: Graph, file: CiphertextFile, options: PoolInferOptions = {}): Promise<Uint8Array> {
    if (this.#closed) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the inference pool is closed', { param: 'pool' });
    checkCiphertextFile(this.#ctx, file, 'input');
    const { records, meta } = file;
    const m = readMeta(meta);
    checkInputShape(graph, m);
    if (m.packing !== 'batch') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the inference pool runs batch-packed inputs; run single-packed ones with inferBytes', { param: 'input' });
    const { per, chunks } = checkBatchInput(this.#ctx, graph, m, records.length);
    this.scheduleFor(graph);
    const { program, schedule } = this.#programs.get(graph)!;
    const outRecords: CiphertextRecord[] = [];
    for (let c = 0; c < chunks; c++) {
      const inputs = records.slice(c * per, (c + 1) * per);
      let reported = -1;
      const outs = await this.#runChunk(program, schedule, inputs, (done, total) => {
        // Progress in whole percent of the chunk's instructions.
        const pct = Math.floor((100 * done) / total);
        if (pct === reported) return;
        reported = pct;
        options.onProgress?.(c * total + done, chunks * total, chunks > 1 ? `chunk ${c + 1}/${chunks}: ${pct} % of ${total} instructions` : `${pct} % of ${total} instructions`);
      });
      outRecords.push(...outs);
    }
    const vectors: CkksVector[] = [];
    try {
      outRecords.forEach((r, i) => vectors.push(loadCiphertext(this.#ctx, r, `output[${i}]`)));
      const outMeta: TensorMeta = { format: 'cipherml-he-tensor', packing: 'batch', batch: m.batch, dims: [program.outputs.length], chunks };
      return serializeCiphertexts(this.#ctx, vectors, outMeta);
    } finally {
      for (const v of vectors) v.delete();
    }
  }

  /** Terminates the threads. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#threads.close();
    this.#ctx.delete();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #runChunk(program: BatchProgram, schedule: PoolSchedule, inputs: readonly CiphertextRecord[], onDone: (done: number, total: number) => void): Promise<CiphertextRecord[]> {
    // Values the threads hand back that are outputs (forwarded values go straight on).
    const outputs = new Map<number, CiphertextRecord>();
    const copy = (r: CiphertextRecord): CiphertextRecord => ({ length: r.length, bytes: new Uint8Array(r.bytes) });
    const threads = this.#threads;
    const done = new Array<number>(schedule.threads).fill(0);
    const total = program.instrs.length;
    threads.onForward = (_from, f) => {
      f.to.forEach((to, i) => {
        // The last receiver takes the buffer itself; earlier ones get copies.
        const record = i === f.to.length - 1 ? f.record : copy(f.record);
        if (to < 0) outputs.set(f.id, record);
        else threads.post(to, { kind: 'value', id: f.id, record }, [record.bytes.buffer as ArrayBuffer]);
      });
    };
    threads.onProgress = (from, n) => {
      done[from] = n;
      onDone(done.reduce((a, b) => a + b, 0), total);
    };
    try {
      const runs = schedule.plans.map((plan, t) => {
        // Copies with their own buffers: a view would post the whole file, and the buffer is transferred.
        const load = plan.inputs.map((id) => ({ id, record: copy(inputs[id]!) }));
        const msg: PoolMessage = { kind: 'run', load, inputs: program.inputs, inputLevel: program.inputLevel, instrs: plan.instrs, send: plan.send, frees: plan.frees, heapBytes: this.#heapBytes, wasmLimit: this.#wasmLimit };
        return threads.call(t, msg, load.map((l) => l.record.bytes.buffer as ArrayBuffer)) as Promise<RunResult>;
      });
      const settled = await Promise.allSettled(runs.map((r) => r.catch((e: unknown) => {
        // One thread failed: the others may be waiting for its values.
        threads.list.forEach((_, i) => threads.post(i, { kind: 'abort' }));
        throw e;
      })));
      const failed = settled.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      this.#lastRun = settled.map((r) => {
        const { spills, reloads, peakHeapBytes, wasmBytes } = (r as PromiseFulfilledResult<RunResult>).value;
        return { spills, reloads, peakHeapBytes, wasmBytes };
      });
      return program.outputs.map((id) => {
        const r = id < program.inputs ? inputs[id] : outputs.get(id);
        if (r === undefined) throw new CipherMLError('CIPHERML_E_WORKER_FAILED', `output value ${id} was never handed back`, { param: 'pool' });
        return copy(r);
      });
    } catch (e) {
      await Promise.allSettled(threads.list.map((_, i) => threads.call(i, { kind: 'reset' })));
      throw e;
    } finally {
      threads.onForward = undefined;
      threads.onProgress = undefined;
    }
  }
}

/**
 * Worker threads that encrypt for the client, each with its own SEAL instance and a copy of the
 * secret key (seeded encryption: half-size ciphertexts). The key stays in this process; the
 * threads exist only while the pool does. Output is byte-compatible with {@link encryptBatch} /
 * {@link encryptSingle}.
 *
 * @example
 * ```ts
 * await using enc = await EncryptionPool.create(serializeSecretKey(client), { threads: 2 });
 * const bytes = await enc.encryptBatch(samples, [1, 28, 28]);
 * ```
 */
export class EncryptionPool {
  readonly threads: number;
  readonly #ctx: CkksContext;
  readonly #threads: Threads;
  readonly #startMs: number;
  #closed = false;

  private constructor(ctx: CkksContext, threads: Threads, startMs: number) {
    this.#ctx = ctx;
    this.#threads = threads;
    this.threads = threads.list.length;
    this.#startMs = startMs;
  }

  /** Milliseconds spent starting the threads and loading the key. */
  get startMs(): number {
    return this.#startMs;
  }

  /** Starts `threads` threads, each loading `secretKey` (a secret key file's bytes). */
  static async create(secretKey: Uint8Array, options: InferencePoolOptions = {}): Promise<EncryptionPool> {
    if (options.threads !== undefined) assertIntegerInRange(options.threads, 'threads', 1, 64);
    if (!(secretKey instanceof Uint8Array)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'secretKey must be the bytes of a secret key file', { param: 'secretKey' });
    const t0 = performance.now();
    const ctx = await deserializeSecretKey(secretKey, 'secretKey');
    const threads = await startThreads(options.threads, { kind: 'initSecret', secretKey }, ctx);
    return new EncryptionPool(ctx, threads, performance.now() - t0);
  }

  /** What `encryptBatch` returns, with the ciphertexts made on the threads. */
  async encryptBatch(samples: readonly ArrayLike<number>[], dims: readonly number[]): Promise<Uint8Array> {
    return await this.#encrypt(batchLayout(this.#ctx.slotCount, samples, dims));
  }

  /** What `encryptSingle` returns, with the ciphertexts made on the threads. */
  async encryptSingle(samples: readonly ArrayLike<number>[], dims: readonly number[]): Promise<Uint8Array> {
    return await this.#encrypt(singleLayout(this.#ctx.slotCount, samples, dims));
  }

  /** Terminates the threads. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#threads.close();
    this.#ctx.delete();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #encrypt({ vectors, meta }: { vectors: Float64Array[]; meta: TensorMeta }): Promise<Uint8Array> {
    if (this.#closed) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the encryption pool is closed', { param: 'pool' });
    // Contiguous shares, one per thread, so the records come back in file order.
    const per = Math.ceil(vectors.length / this.threads);
    const parts = await Promise.all(
      this.#threads.list.map((_, i) => {
        const share = vectors.slice(i * per, (i + 1) * per);
        return share.length === 0 ? Promise.resolve([]) : (this.#threads.call(i, { kind: 'encrypt', vectors: share }, share.map((v) => v.buffer as ArrayBuffer)) as Promise<CiphertextRecord[]>);
      }),
    );
    return assembleCiphertexts(this.#ctx, parts.flat(), meta);
  }
}
