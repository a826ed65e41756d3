import type * as BullMQ from 'bullmq';
import { CipherMLError } from '../core/errors.ts';
import { importOptional } from '../core/optional.ts';
import { runJob } from './jobs.ts';
import type { JobStorageRef } from './jobs.ts';
import { openStorage } from './storage/index.ts';

/** bullmq is an optional peer dependency: loaded only when Redis is configured. */
async function bullmq(): Promise<typeof BullMQ> {
  return importOptional(() => import('bullmq'), { name: 'bullmq', param: '--redis', purpose: 'the Redis job queue' });
}

/** Connection options of a Redis server, as BullMQ (ioredis) takes them. */
export interface RedisConnection {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly password?: string;
  readonly username?: string;
  readonly maxRetriesPerRequest: null;
}

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
export function redisConnection(url: string): RedisConnection {
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
 * const q = await openFitQueue('redis://127.0.0.1:6379');
 * await q.enqueue(job.id);
 * ```
 */
export async function openFitQueue(url: string): Promise<{ enqueue(jobId: string): Promise<void>; close(): Promise<void> }> {
  const connection = redisConnection(url);
  const { Queue } = await bullmq();
  const queue = new Queue(FIT_QUEUE, { connection });
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
 * `cipherml serve worker`: runs fit and encrypted-inference jobs from the queue against the shared storage.
 *
 * @example
 * ```ts
 * const w = await startQueueWorker({ dataDir: 'data', db: process.env.DATABASE_URL }, 'redis://127.0.0.1:6379');
 * ```
 */
export async function startQueueWorker(ref: JobStorageRef, url: string, concurrency = 1): Promise<{ close(): Promise<void> }> {
  const connection = redisConnection(url);
  const { Worker } = await bullmq();
  const storage = await openStorage(ref);
  const worker = new Worker<{ jobId: string }>(FIT_QUEUE, async (job) => runJob(storage, job.data.jobId), { connection, concurrency });
  await worker.waitUntilReady();
  return {
    close: async () => {
      await worker.close();
      await storage.close();
    },
  };
}
