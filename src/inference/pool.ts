import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { CiphertextFile, CiphertextRecord, CkksContext, CkksVector } from '../ckks/index.ts';
import { assembleCiphertexts, checkCiphertextFile, deserializePublicContext, deserializeSecretKey, loadCiphertext, serializeCiphertexts, splitCiphertextFile } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import type { BatchInstr, BatchProgram } from './batch.ts';
import { recordBatch } from './batch.ts';
import type { TensorMeta } from './meta.ts';
import { batchLayout, checkBatchInput, checkInputShape, readMeta, singleLayout } from './meta.ts';
import type { Graph } from './onnx.ts';
import type { PoolMessage, WaveResult } from './pool-worker.ts';

/**
 * Batch-plan inference on worker threads, each with its own SEAL instance (SEAL in WebAssembly
 * is single-threaded). The batch plan is recorded once per model as a straight-line program
 * ({@link recordBatch}); instructions are grouped into waves (an instruction's wave is one more
 * than its operands' latest), and each wave's instructions are list-scheduled onto threads by
 * cost — the number of scalar products of a linear combination, a fixed cost for a product —
 * preferring the thread that already holds the operands (Graham's list scheduling with
 * communication cost; a ciphertext moved between threads costs its serialization). Threads
 * meet at a barrier after every wave; the main thread forwards ciphertexts between them.
 */

/** Cost units: one plaintext-scalar product of a linear combination. */
const COST = { mul: 6, toLevel: 0.2, const: 4, copy: 0.1, move: 1.5 } as const;

function cost(ins: BatchInstr): number {
  switch (ins.op) {
    case 'lc':
      return ins.ins.length + 0.5;
    case 'mul':
      return COST.mul;
    case 'toLevel':
      return COST.toLevel;
    case 'const':
      return COST.const;
    case 'copy':
      return COST.copy;
  }
}

function operands(ins: BatchInstr): readonly number[] {
  switch (ins.op) {
    case 'lc':
      return ins.ins;
    case 'mul':
      return ins.a === ins.b ? [ins.a] : [ins.a, ins.b];
    case 'toLevel':
    case 'copy':
      return [ins.a];
    case 'const':
      return [];
  }
}

/** What one thread does in one wave. */
export interface ThreadWave {
  readonly instrs: BatchInstr[];
  /** Values it receives before the wave (inputs from the file, or from another thread). */
  readonly load: number[];
  readonly send: number[];
  readonly free: number[];
  cost: number;
}

/** A program split over threads. */
export interface PoolSchedule {
  readonly threads: number;
  /** waves[w][t]: thread t's part of wave w. */
  readonly waves: readonly (readonly ThreadWave[])[];
  /** Sum of instruction costs, and of the busiest thread's per wave (the critical path). */
  readonly totalCost: number;
  readonly spanCost: number;
  /** Ciphertexts moved between threads. */
  readonly moves: number;
}

/**
 * Splits a batch program over `threads` threads (see the module comment).
 *
 * @example
 * ```ts
 * const s = schedulePool(recordBatch(graph, ctx.maxLevel), 2);
 * s.totalCost / s.spanCost; // ≈ 2: the speed-up the schedule allows
 * ```
 */
export function schedulePool(program: BatchProgram, threads: number): PoolSchedule {
  assertIntegerInRange(threads, 'threads', 1, 64);
  const wave = new Map<number, number>();
  for (let i = 0; i < program.inputs; i++) wave.set(i, 0);
  const byWave: BatchInstr[][] = [];
  for (const ins of program.instrs) {
    const w = 1 + Math.max(0, ...operands(ins).map((id) => wave.get(id)!));
    wave.set(ins.out, w);
    (byWave[w - 1] ??= []).push(ins);
  }
  const holders = new Map<number, Set<number>>();
  const producer = new Map<number, number>();
  const sendAt = new Map<number, number>();
  const waves: ThreadWave[][] = [];
  // Last wave each thread needs each value it holds.
  const lastUse: Map<number, number>[] = Array.from({ length: threads }, () => new Map());
  let totalCost = 0;
  let spanCost = 0;
  let moves = 0;
  byWave.forEach((list, w) => {
    const parts: ThreadWave[] = Array.from({ length: threads }, () => ({ instrs: [], load: [], send: [], free: [], cost: 0 }));
    const sorted = [...(list ?? [])].sort((a, b) => cost(b) - cost(a));
    for (const ins of sorted) {
      const ops = operands(ins);
      let best = 0;
      let bestFinish = Infinity;
      for (let t = 0; t < threads; t++) {
        const missing = ops.filter((id) => !(holders.get(id)?.has(t) ?? false)).length;
        const finish = parts[t]!.cost + cost(ins) + COST.move * missing;
        if (finish < bestFinish) [best, bestFinish] = [t, finish];
      }
      const part = parts[best]!;
      for (const id of ops) {
        const h = holders.get(id) ?? new Set<number>();
        holders.set(id, h);
        if (!h.has(best)) {
          h.add(best);
          part.load.push(id);
          if (id >= program.inputs) {
            moves++;
            sendAt.set(id, wave.get(id)!);
          }
        }
        lastUse[best]!.set(id, w + 1);
      }
      part.instrs.push(ins);
      part.cost = bestFinish;
      holders.set(ins.out, new Set([best]));
      producer.set(ins.out, best);
      lastUse[best]!.set(ins.out, Math.max(lastUse[best]!.get(ins.out) ?? 0, w + 1));
      totalCost += cost(ins);
    }
    // Instructions run in program order within a thread (operands of one wave never depend on each other).
    const order = new Map(list?.map((ins, i) => [ins, i]));
    for (const p of parts) p.instrs.sort((a, b) => order.get(a)! - order.get(b)!);
    spanCost += Math.max(...parts.map((p) => p.cost));
    waves.push(parts);
  });
  for (const id of program.outputs) if (id >= program.inputs) sendAt.set(id, wave.get(id)!);
  for (const [id, w] of sendAt) waves[w - 1]![producer.get(id)!]!.send.push(id);
  lastUse.forEach((m, t) => {
    for (const [id, w] of m) waves[w - 1]![t]!.free.push(id);
  });
  return { threads, waves, totalCost, spanCost, moves };
}

/** Options of {@link InferencePool.inferBytes}. */
export interface PoolInferOptions {
  /** Progress per finished wave, with the chunk index. */
  readonly onProgress?: (done: number, total: number, what: string) => void;
}

/** Options of {@link InferencePool.create}. */
export interface InferencePoolOptions {
  /** Worker threads (default: the machine's cores). */
  readonly threads?: number;
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
  #next = 1;
  #closed = false;

  constructor(n: number) {
    const url = new URL(import.meta.url.endsWith('.ts') ? './pool-worker.ts' : './pool-worker.js', import.meta.url);
    this.list = Array.from({ length: n }, () => ({ worker: new Worker(url), pending: new Map() }));
    for (const t of this.list) this.#wire(t);
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

  #wire(t: PoolThread): void {
    t.worker.on('message', (reply: { id: number; ok: boolean; result?: unknown; error?: { code: string; message: string; param?: string } }) => {
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
  #closed = false;

  private constructor(ctx: CkksContext, threads: Threads, startMs: number) {
    this.#ctx = ctx;
    this.#threads = threads;
    this.threads = threads.list.length;
    this.#startMs = startMs;
  }

  /** Milliseconds spent starting the threads and loading keys. */
  get startMs(): number {
    return this.#startMs;
  }

  /** Starts `threads` threads, each loading `publicKey` (a key.pub file's bytes). */
  static async create(publicKey: Uint8Array, options: InferencePoolOptions = {}): Promise<InferencePool> {
    if (options.threads !== undefined) assertIntegerInRange(options.threads, 'threads', 1, 64);
    if (!(publicKey instanceof Uint8Array)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'publicKey must be the bytes of a key.pub file', { param: 'publicKey' });
    const t0 = performance.now();
    const ctx = await deserializePublicContext(publicKey, 'key', { galoisKeys: false });
    const threads = await startThreads(options.threads, { kind: 'init', publicKey }, ctx);
    return new InferencePool(ctx, threads, performance.now() - t0);
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
    const total = chunks * schedule.waves.length;
    for (let c = 0; c < chunks; c++) {
      const inputs = records.slice(c * per, (c + 1) * per);
      const outs = await this.#runChunk(program, schedule, inputs, (w) => options.onProgress?.(c * schedule.waves.length + w, total, chunks > 1 ? `chunk ${c + 1}/${chunks} wave ${w}` : `wave ${w}`));
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

  async #runChunk(program: BatchProgram, schedule: PoolSchedule, inputs: readonly CiphertextRecord[], onWave: (w: number) => void): Promise<CiphertextRecord[]> {
    // Ciphertexts handed back by a thread, until every thread that needs them has them.
    const store = new Map<number, CiphertextRecord>();
    const record = (id: number): CiphertextRecord => {
      const r = id < program.inputs ? inputs[id] : store.get(id);
      if (r === undefined) throw new CipherMLError('CIPHERML_E_WORKER_FAILED', `value ${id} was never handed back`, { param: 'pool' });
      // A copy with its own buffer: a view would post the whole file, and the buffer is transferred.
      return { length: r.length, bytes: new Uint8Array(r.bytes) };
    };
    try {
      for (let w = 0; w < schedule.waves.length; w++) {
        const parts = schedule.waves[w]!;
        const results = await Promise.all(
          parts.map((p, t) => {
            const load = p.load.map((id) => ({ id, record: record(id) }));
            const msg: PoolMessage = { kind: 'wave', load, inputs: program.inputs, inputLevel: program.inputLevel, instrs: p.instrs, send: p.send, free: p.free };
            return this.#threads.call(t, msg, load.map((l) => l.record.bytes.buffer as ArrayBuffer)) as Promise<WaveResult>;
          }),
        );
        for (const r of results) for (const s of r.sent) store.set(s.id, s.record);
        onWave(w + 1);
      }
      return program.outputs.map((id) => record(id));
    } catch (e) {
      await Promise.allSettled(this.#threads.list.map((_, i) => this.#threads.call(i, { kind: 'reset' })));
      throw e;
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
