import { parentPort } from 'node:worker_threads';
import { errorToReply } from '../core/worker-pool.ts';
import { accumulateMasks } from './prg.ts';
import { seedOf, type MaskJob } from './unmask.ts';

/**
 * Worker-thread entry for the server's mask removal (see unmask.ts): expands a batch of PRG seeds
 * (agreeing the X25519 keys of pairwise masks first) and returns Σ sign_i · PRG(seed_i) mod 2^32 over `length` words.
 * Wire contract: `{ id, task }` in; `{ id, ok: true, result }` or `{ id, ok: false, error }` out.
 */

/** One batch of masks to expand (seeds, or key pairs to agree first). */
export interface MaskTask {
  readonly length: number;
  readonly jobs: readonly MaskJob[];
}

function run(task: MaskTask): Uint32Array {
  const acc = new Uint32Array(task.length);
  accumulateMasks(acc, task.jobs.map((j) => ({ seed: seedOf(j), sign: j.sign > 0 ? 1 : -1 })));
  return acc;
}

parentPort?.on('message', ({ id, task }: { id: number; task: MaskTask }) => {
  try {
    parentPort!.postMessage({ id, ok: true, result: run(task) });
  } catch (e) {
    parentPort!.postMessage({ id, ok: false, error: errorToReply(e) });
  }
});
