import { Worker, type ResourceLimits } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { CipherMLError } from './errors.ts';
import { assertIntegerInRange } from './guards.ts';

/**
 * A fixed-size pool of worker threads running one module. Each worker takes one task at a time;
 * tasks queue in FIFO order. An idle worker is unref'd, so a pool never keeps the process alive;
 * a busy one is ref'd, so a pending task always completes.
 *
 * Wire contract with the worker module: it receives `{ id, task }` and answers
 * `{ id, ok: true, result }` or `{ id, ok: false, error: { code, message, param? } }`.
 */

interface Slot {
  worker: Worker;
  busy: boolean;
}
interface Pending {
  id: number;
  task: unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}
interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string; param?: string };
}

/** Options of a {@link WorkerPool}: `resourceLimits` applies to each of its threads. */
export interface WorkerPoolOptions {
  readonly resourceLimits?: ResourceLimits;
}

/**
 * @example
 * ```ts
 * const pool = new WorkerPool(new URL('./worker.ts', import.meta.url), 2);
 * const result = await pool.run<number[]>({ kind: 'square', xs: [1, 2, 3] });
 * await pool.close();
 * ```
 */
export class WorkerPool {
  readonly size: number;
  readonly #url: URL;
  readonly #options: WorkerPoolOptions;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  readonly #inflight = new Map<Worker, Pending>();
  #nextId = 1;
  #closed = false;

  constructor(url: URL, size: number = availableParallelism(), options: WorkerPoolOptions = {}) {
    assertIntegerInRange(size, 'size', 1, 256);
    this.#url = url;
    this.#options = options;
    this.size = size;
  }

  /** Runs one task on the next free worker. */
  run<T>(task: unknown): Promise<T> {
    if (this.#closed) return Promise.reject(new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the worker pool is closed', { param: 'pool' }));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, task, resolve: resolve as (v: unknown) => void, reject });
      this.#pump();
    });
  }

  /** Terminates all workers; queued tasks are rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.reject(new CipherMLError('CIPHERML_E_WORKER_FAILED', 'the pool was closed before the task ran', { param: 'pool' }));
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => !s.busy);
      if (slot === undefined && this.#slots.length < this.size) slot = this.#spawn();
      if (slot === undefined) return;
      const job = this.#queue.shift()!;
      slot.busy = true;
      slot.worker.ref();
      this.#inflight.set(slot.worker, job);
      slot.worker.postMessage({ id: job.id, task: job.task });
    }
  }

  #spawn(): Slot {
    const worker = new Worker(this.#url, this.#options.resourceLimits === undefined ? {} : { resourceLimits: this.#options.resourceLimits });
    const slot: Slot = { worker, busy: false };
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const job = this.#inflight.get(worker);
      if (job === undefined || job.id !== reply.id) return;
      this.#inflight.delete(worker);
      slot.busy = false;
      worker.unref();
      if (reply.ok) job.resolve(reply.result);
      else job.reject(CipherMLError.revive(reply.error ?? { code: 'CIPHERML_E_WORKER_FAILED', message: 'worker failed without a message' }));
      this.#pump();
    });
    const fail = (err: unknown): void => {
      const job = this.#inflight.get(worker);
      this.#inflight.delete(worker);
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots.splice(i, 1);
      job?.reject(new CipherMLError('CIPHERML_E_WORKER_FAILED', `worker thread died: ${err instanceof Error ? err.message : String(err)}`, { param: 'pool', cause: err }));
      if (!this.#closed) this.#pump();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.#closed && this.#slots.includes(slot)) fail(new Error(`exited with code ${code}`));
    });
    this.#slots.push(slot);
    return slot;
  }
}

/** Serializes an error for the wire contract above (used inside worker modules). */
export function errorToReply(e: unknown): { code: string; message: string; param?: string } {
  if (e instanceof CipherMLError) return { code: e.code, message: e.message, ...(e.param === undefined ? {} : { param: e.param }) };
  return { code: 'CIPHERML_E_WORKER_FAILED', message: e instanceof Error ? e.message : String(e) };
}
