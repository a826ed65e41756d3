import { Worker } from 'node:worker_threads';
import { CipherMLError } from '../core/errors.ts';

/** Work the HTTP thread hands to the heavy pool (bytes are copied to the worker). */
export type HeavyTask =
  | { readonly kind: 'publicContext'; readonly bytes: Uint8Array; readonly param: string }
  | { readonly kind: 'ciphertexts'; readonly bytes: Uint8Array; readonly publicContext: Uint8Array; readonly param: string }
  | { readonly kind: 'predict'; readonly bytes: Uint8Array; readonly publicContext: Uint8Array; readonly trained: Uint8Array; readonly features: number }
  | { readonly kind: 'sha256'; readonly bytes: Uint8Array }
  /** `he keyparams` at deploy: the bundle of ONNX model and calibration inputs (src/inference/service-wire.ts). */
  | { readonly kind: 'calibrate'; readonly bytes: Uint8Array; readonly maxBytes: number }
  /** A user's evaluation keys (key.pub) for a deployed model: loaded, and checked against the keyparams. */
  | { readonly kind: 'inferenceKeys'; readonly bytes: Uint8Array; readonly keyParams: string };

/** Options of {@link HeavyPool}. */
export interface HeavyPoolOptions {
  /** Worker threads (default 2). */
  readonly threads?: number;
  /** Heavy requests one user may have queued or running (default 2); more get 429. */
  readonly perUser?: number;
  /** V8 heap limit of each worker thread in MiB (default 512): a runaway parse kills its worker, not the service. */
  readonly heapMb?: number;
}

interface Pending {
  readonly id: number;
  readonly task: HeavyTask;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Worker threads for the service's heavy steps (CKKS decompression and deserialization,
 * public-context checks, prediction) with a bounded queue per user: the HTTP thread only moves
 * bytes, and one user's uploads cannot starve another's list requests or fill the queue.
 *
 * @example
 * ```ts
 * const pool = new HeavyPool({ threads: 2, perUser: 2 });
 * const { sha256 } = await pool.run<{ sha256: string }>('alice', { kind: 'sha256', bytes });
 * await pool.close();
 * ```
 */
export class HeavyPool {
  readonly #threads: number;
  readonly #perUser: number;
  readonly #heapMb: number;
  readonly #idle: Worker[] = [];
  readonly #all = new Set<Worker>();
  readonly #inflight = new Map<Worker, Pending>();
  readonly #queue: Pending[] = [];
  readonly #byUser = new Map<string, number>();
  #next = 1;
  #closed = false;

  constructor(options: HeavyPoolOptions = {}) {
    this.#threads = options.threads ?? 2;
    this.#perUser = options.perUser ?? 2;
    this.#heapMb = options.heapMb ?? 512;
  }

  /** Runs `task` for `user`; CIPHERML_E_SERVICE_BUSY when that user already has `perUser` in progress. */
  async run<T>(user: string, task: HeavyTask): Promise<T> {
    if (this.#closed) throw new CipherMLError('CIPHERML_E_WORKER_FAILED', 'the service is shutting down', { param: 'service' });
    const n = this.#byUser.get(user) ?? 0;
    if (n >= this.#perUser) {
      throw new CipherMLError('CIPHERML_E_SERVICE_BUSY', `${n} heavy requests of this user are in progress (limit ${this.#perUser})`, { param: 'Authorization', details: { limit: this.#perUser } });
    }
    this.#byUser.set(user, n + 1);
    try {
      return (await new Promise<unknown>((resolve, reject) => {
        this.#queue.push({ id: this.#next++, task, resolve, reject });
        this.#pump();
      })) as T;
    } finally {
      const m = (this.#byUser.get(user) ?? 1) - 1;
      if (m === 0) this.#byUser.delete(user);
      else this.#byUser.set(user, m);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.reject(new CipherMLError('CIPHERML_E_WORKER_FAILED', 'the service is shutting down', { param: 'service' }));
    await Promise.all([...this.#all].map((w) => w.terminate()));
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let w = this.#idle.pop();
      if (w === undefined && this.#all.size < this.#threads) w = this.#spawn();
      if (w === undefined) return;
      const job = this.#queue.shift()!;
      this.#inflight.set(w, job);
      w.ref();
      w.postMessage({ id: job.id, task: job.task });
    }
  }

  #spawn(): Worker {
    const w = new Worker(new URL('./heavy-worker.ts', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: this.#heapMb } });
    this.#all.add(w);
    w.unref();
    w.on('message', (reply: { id: number; ok: boolean; result?: unknown; error?: { code: string; message: string; param?: string } }) => {
      const job = this.#inflight.get(w);
      if (job === undefined || job.id !== reply.id) return;
      this.#inflight.delete(w);
      w.unref();
      this.#idle.push(w);
      if (reply.ok) job.resolve(reply.result);
      else job.reject(CipherMLError.revive(reply.error ?? { code: 'CIPHERML_E_WORKER_FAILED', message: 'worker failed without a message' }));
      this.#pump();
    });
    const fail = (err: unknown): void => {
      if (!this.#all.delete(w)) return;
      const i = this.#idle.indexOf(w);
      if (i >= 0) this.#idle.splice(i, 1);
      const job = this.#inflight.get(w);
      this.#inflight.delete(w);
      job?.reject(new CipherMLError('CIPHERML_E_WORKER_FAILED', `the worker thread stopped: ${err instanceof Error ? err.message : String(err)}`, { param: 'service', cause: err }));
      if (!this.#closed) this.#pump();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    return w;
  }
}
