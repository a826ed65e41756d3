import { parentPort } from 'node:worker_threads';
import { errorToReply } from '../core/worker-pool.ts';
import { accumulateMask } from './prg.ts';

/**
 * Worker-thread entry for the server's mask removal (see unmask.ts): expands a batch of 32-byte
 * PRG seeds and returns Σ sign_i · PRG(seed_i) mod 2^32 over `length` words.
 * Wire contract: `{ id, task }` in; `{ id, ok: true, result }` or `{ id, ok: false, error }` out.
 */

/** One batch of masks to expand. */
export interface MaskTask {
  readonly length: number;
  /** Concatenated 32-byte seeds. */
  readonly seeds: Uint8Array;
  /** +1 or −1 per seed. */
  readonly signs: Int8Array;
}

function run(task: MaskTask): Uint32Array {
  const acc = new Uint32Array(task.length);
  for (let i = 0; i < task.signs.length; i++) accumulateMask(acc, task.seeds.subarray(i * 32, i * 32 + 32), task.signs[i]! > 0 ? 1 : -1);
  return acc;
}

parentPort?.on('message', ({ id, task }: { id: number; task: MaskTask }) => {
  try {
    parentPort!.postMessage({ id, ok: true, result: run(task) });
  } catch (e) {
    parentPort!.postMessage({ id, ok: false, error: errorToReply(e) });
  }
});
