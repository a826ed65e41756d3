import { availableParallelism } from 'node:os';
import { WorkerPool } from '../core/worker-pool.ts';
import { agreeKey } from './keys.ts';
import { accumulateMasks } from './prg.ts';

/**
 * Mask removal on the server (Bonawitz et al. §4, round 4): Σ sign_i · PRG(seed_i) over the
 * survivors' self-mask seeds and the pairwise keys of dropped clients, in this thread or spread
 * over worker threads (the expansion is the server's dominant cost: one AES-CTR stream of
 * `length` words per seed). The result is the same either way (addition mod 2^32 commutes).
 */

/**
 * One mask to remove or add: a PRG seed, or the X25519 key pair whose agreed key is the seed
 * (a dropped client's pairwise mask: the agreement runs on the worker thread too).
 */
export type MaskJob =
  | { readonly seed: Uint8Array; readonly sign: 1 | -1 }
  | { readonly privateKey: Uint8Array; readonly peerPublicKey: Uint8Array; readonly info: string; readonly sign: 1 | -1 };

/**
 * The PRG seed of a job.
 *
 * @example
 * ```ts
 * seedOf({ seed, sign: -1 }); // seed
 * ```
 */
export function seedOf(j: MaskJob): Uint8Array {
  return 'seed' in j ? j.seed : agreeKey(j.privateKey, j.peerPublicKey, j.info);
}

function workerUrl(): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './mask-worker.ts' : './mask-worker.js', import.meta.url);
}

let shared: WorkerPool | null = null;

/**
 * The process-wide mask-expansion pool (one thread per core), created on first use; idle threads
 * do not keep the process alive.
 *
 * @example
 * ```ts
 * await applyMasks(sum, jobs, sharedMaskPool());
 * ```
 */
export function sharedMaskPool(): WorkerPool {
  shared ??= new WorkerPool(workerUrl(), availableParallelism());
  return shared;
}

/**
 * Starts every thread of `pool` and waits until each has loaded the mask module, so the first
 * unmasking is not charged for thread start-up (a server calls this once at start, as it opens its
 * listening socket before the first round).
 *
 * @example
 * ```ts
 * await warmMaskPool(); // at server start
 * ```
 */
export async function warmMaskPool(pool: WorkerPool = sharedMaskPool()): Promise<void> {
  // size tasks queued at once: the pool spawns a thread for each one that finds no idle thread.
  await Promise.all(Array.from({ length: pool.size }, () => pool.run<Uint32Array>({ length: 0, jobs: [] })));
}

/** Below this many words of expansion (seeds × length) threads cost more than they save. */
export const PARALLEL_MASK_WORDS: number = 1 << 22;

/**
 * acc ← acc + Σ sign·PRG(seed) mod 2^32, split over `pool` when it has more than one thread and
 * the work is at least {@link PARALLEL_MASK_WORDS} words.
 *
 * @example
 * ```ts
 * await applyMasks(sum, [{ seed, sign: -1 }], null); // in this thread
 * ```
 */
export async function applyMasks(acc: Uint32Array, jobs: readonly MaskJob[], pool: WorkerPool | null): Promise<void> {
  if (pool === null || pool.size < 2 || jobs.length < 2 || jobs.length * acc.length < PARALLEL_MASK_WORDS) {
    accumulateMasks(acc, jobs.map((j) => ({ seed: seedOf(j), sign: j.sign })));
    return;
  }
  const parts = Math.min(pool.size, jobs.length);
  const per = Math.ceil(jobs.length / parts);
  const batches: Promise<Uint32Array>[] = [];
  for (let p = 0; p < parts; p++) {
    const slice = jobs.slice(p * per, (p + 1) * per);
    if (slice.length === 0) continue;
    batches.push(pool.run<Uint32Array>({ length: acc.length, jobs: slice }));
  }
  for (const partial of await Promise.all(batches)) for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + partial[i]!;
}
