import { parentPort } from 'node:worker_threads';
import { errorToReply } from '../core/worker-pool.ts';
import { runHeavyTask } from './heavy-task.ts';
import type { HeavyTask } from './heavy.ts';

// Worker-thread side of HeavyPool: every CKKS parse (decompression, SEAL loading) and every
// prediction of the service runs here, never on the HTTP thread.
parentPort!.on('message', (msg: { id: number; task: HeavyTask }) => {
  runHeavyTask(msg.task).then(
    (result) => parentPort!.postMessage({ id: msg.id, ok: true, result }),
    (e: unknown) => parentPort!.postMessage({ id: msg.id, ok: false, error: errorToReply(e) }),
  );
});
