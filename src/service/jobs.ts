import { Worker } from 'node:worker_threads';
import { CipherMLError } from '../core/errors.ts';
import { deserializePublicContext } from '../ckks/index.ts';
import type { Storage } from './storage/index.ts';
import { trainEncrypted, validateHyperParams } from '../ml/encrypted-lr.ts';
import { runInferJob } from './infer-job.ts';

/** Where a job worker finds the storage (each worker opens its own connection). */
export interface JobStorageRef {
  readonly dataDir: string;
  readonly db?: string | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs one fit job to completion against storage: loads the public context, encrypted data and
 * model, trains, asks the gateway for a refresh through the `refresh_request`/`refresh_reply`
 * blobs when the chain runs out, checkpoints after every epoch (`trained_model` blob and the
 * job's `state.epoch`), so a restarted service resumes from the last finished epoch.
 *
 * @example
 * ```ts
 * await runFitJob(storage, jobId);
 * ```
 */
export async function runFitJob(storage: Storage, jobId: string, pollMs: number = 100): Promise<void> {
  const job = await storage.getJob(jobId);
  if (job === undefined) return;
  const { userId, modelId } = job;
  try {
    const hyper = validateHyperParams(job.state['hyper']);
    const startEpoch = typeof job.state['epoch'] === 'number' ? job.state['epoch'] : 0;
    const need = async (kind: 'public_context' | 'train_data' | 'model'): Promise<Uint8Array> => {
      const b = await storage.getBlob(userId, modelId, kind);
      if (b === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no ${kind} uploaded`, { param: kind });
      return b;
    };
    const ctx = await deserializePublicContext(await need('public_context'), 'publicContext');
    try {
      const checkpoint = startEpoch > 0 ? await storage.getBlob(userId, modelId, 'trained_model') : undefined;
      let refreshes = typeof job.figures['refreshes'] === 'number' ? job.figures['refreshes'] : 0;
      await storage.updateJob(jobId, { status: 'running' });
      const r = await trainEncrypted(ctx, await need('train_data'), checkpoint ?? (await need('model')), hyper, {
        onEpoch: async (epoch, weights) => {
          if ((await storage.getJob(jobId))?.status === 'failed') throw new CipherMLError('CIPHERML_E_JOB_FAILED', 'cancelled by its user', { param: 'jobId' });
          await storage.putBlob(userId, modelId, 'trained_model', weights);
          await storage.updateJob(jobId, { progress: epoch / hyper.numberOfEpochs, state: { ...job.state, epoch }, figures: { epochsDone: epoch, refreshes } });
        },
        refresh: async (weights, epoch) => {
          await storage.deleteBlob(userId, modelId, 'refresh_reply');
          await storage.putBlob(userId, modelId, 'refresh_request', weights);
          await storage.updateJob(jobId, { status: 'awaiting_refresh', figures: { refreshes, refreshEpoch: epoch } });
          for (;;) {
            const reply = await storage.getBlob(userId, modelId, 'refresh_reply');
            if (reply !== undefined) {
              await storage.deleteBlob(userId, modelId, 'refresh_reply');
              await storage.deleteBlob(userId, modelId, 'refresh_request');
              refreshes++;
              await storage.updateJob(jobId, { status: 'running', figures: { refreshes } });
              return reply;
            }
            const now = await storage.getJob(jobId);
            if (now === undefined || now.status === 'failed') throw new CipherMLError('CIPHERML_E_JOB_FAILED', 'the job was cancelled while waiting for a refresh', { param: 'jobId' });
            await sleep(pollMs);
          }
        },
      }, startEpoch);
      await storage.putBlob(userId, modelId, 'trained_model', r.weights);
      await storage.addUsage(userId, modelId, 'trainMs', r.trainMs);
      await storage.addUsage(userId, modelId, 'fitJobs', 1);
      await storage.updateJob(jobId, { status: 'succeeded', progress: 1, figures: { trainMs: Math.round(r.trainMs), epochs: hyper.numberOfEpochs, refreshes } });
    } finally {
      ctx.delete();
    }
  } catch (e) {
    const err = e instanceof CipherMLError ? { code: e.code, message: e.message } : { code: 'CIPHERML_E_JOB_FAILED', message: (e as Error).message };
    await storage.updateJob(jobId, { status: 'failed', error: err }).catch(() => undefined);
  }
}

/**
 * Runs a fit job on a worker thread (its own storage connection), so training never blocks the
 * HTTP event loop. Resolves when the worker exits.
 *
 * @example
 * ```ts
 * await runFitJobOnThread({ dataDir: 'data' }, job.id);
 * ```
 */
export function runFitJobOnThread(ref: JobStorageRef, jobId: string, onStart?: (worker: Worker) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url.endsWith('.ts') ? './job-worker.ts' : './job-worker.js', import.meta.url), { workerData: { ref, jobId } });
    onStart?.(w);
    w.once('error', (e) => reject(new CipherMLError('CIPHERML_E_WORKER_FAILED', `job ${jobId}: ${e.message}`, { param: 'jobId', cause: e })));
    w.once('exit', () => resolve());
  });
}

/**
 * Runs a stored job by its kind: fit ({@link runFitJob}) or encrypted inference (runInferJob).
 * The thread and queue workers call this, so both kinds share one lifecycle and one queue.
 *
 * @example
 * ```ts
 * await runJob(storage, jobId);
 * ```
 */
export async function runJob(storage: Storage, jobId: string): Promise<void> {
  const job = await storage.getJob(jobId);
  if (job === undefined) return;
  if (job.kind === 'infer') return runInferJob(storage, jobId);
  return runFitJob(storage, jobId);
}
