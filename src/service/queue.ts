import { Queue, Worker } from 'bullmq';
import type { ConnectionOptions } from 'bullmq';
import { CipherMLError } from '../core/errors.ts';
import { runFitJob } from './jobs.ts';
import type { JobStorageRef } from './jobs.ts';
import { openStorage } from './storage/index.ts';

/** BullMQ queue name of fit jobs. */
export const FIT_QUEUE = 'cipherml-fit';

/**
 * Redis connection options from a `redis://[:password@]host[:port][/db]` URL.
 *
 * @example
 * ```ts
 * redisConnection('redis://127.0.0.1:6379/0');
 * ```
 */
export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `not a URL: ${url}`, { param: '--redis', cause: e });
  }
  if (u.protocol !== 'redis:') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected redis://…, got ${u.protocol}`, { param: '--redis' });
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
    db,
    ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
    ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
    maxRetriesPerRequest: null,
  };
}

/**
 * The producer side: the service enqueues fit job ids (the job itself lives in storage, so a
 * worker needs the same storage: PostgreSQL for other machines, or the same data folder).
 *
 * @example
 * ```ts
 * const q = openFitQueue('redis://127.0.0.1:6379');
 * await q.enqueue(job.id);
 * ```
 */
export function openFitQueue(url: string): { enqueue(jobId: string): Promise<void>; close(): Promise<void> } {
  const queue = new Queue(FIT_QUEUE, { connection: redisConnection(url) });
  return {
    enqueue: async (jobId) => {
      // The BullMQ job id is the storage job id: enqueueing an interrupted job again is a no-op
      // while BullMQ still holds it, and stalled jobs of dead workers are retried by BullMQ.
      await queue.add('fit', { jobId }, { jobId, removeOnComplete: true, removeOnFail: true, attempts: 3 });
    },
    close: () => queue.close(),
  };
}

/**
 * `cipherml serve worker`: runs fit jobs from the queue against the shared storage.
 *
 * @example
 * ```ts
 * const w = await startQueueWorker({ dataDir: 'data', db: process.env.DATABASE_URL }, 'redis://127.0.0.1:6379');
 * ```
 */
export async function startQueueWorker(ref: JobStorageRef, url: string, concurrency = 1): Promise<{ close(): Promise<void> }> {
  const storage = await openStorage(ref);
  const worker = new Worker<{ jobId: string }>(FIT_QUEUE, async (job) => runFitJob(storage, job.data.jobId), { connection: redisConnection(url), concurrency });
  await worker.waitUntilReady();
  return {
    close: async () => {
      await worker.close();
      await storage.close();
    },
  };
}
