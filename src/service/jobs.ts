import { Worker } from 'node:worker_threads';
import { CipherMLError } from '../core/errors.ts';
import { deserializePublicContext } from '../ckks/index.ts';
import type { Storage } from './storage/index.ts';
import { trainEncrypted, validateHyperParams } from '../ml/encrypted-lr.ts';
import { runInferJob } from './infer-job.ts';
import { logJob } from './job-log.ts';

/** Where a job worker finds the storage (each worker opens its own connection). */
export interface JobStorageRef {
  readonly dataDir: string;
  readonly db?: string | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long a job waits for the gateway's refresh unless `serve --refresh-timeout` says otherwise (30 minutes). */
export const DEFAULT_REFRESH_TIMEOUT_MS: number = 30 * 60_000;

/** Thrown inside a job that storage shows final (cancelled, or failed by another party): the job stops writing. */
function stopped(status: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_JOB_CANCELLED', `the job is ${status}; it stops without writing further results`, { param: 'jobId' });
}
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Runs one fit job to completion against storage: loads the public context, encrypted data and
 * model, trains, asks the gateway for a refresh through the `refresh_request`/`refresh_reply`
 * blobs when the chain runs out, checkpoints after every epoch (`trained_model` blob and the
 * job's `state.epoch`), so a restarted service resumes from the last finished epoch. A refresh
 * not answered within `state.refreshTimeoutMs` fails the job with `CIPHERML_E_REFRESH_TIMEOUT`;
 * a job found final in storage (cancelled) stops before its next write.
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
    const refreshTimeoutMs = typeof job.state['refreshTimeoutMs'] === 'number' ? job.state['refreshTimeoutMs'] : DEFAULT_REFRESH_TIMEOUT_MS;
    /** Refuses to go on (and so to write) once storage shows the job final. */
    const live = async (): Promise<void> => {
      const now = await storage.getJob(jobId);
      if (now === undefined || FINAL.has(now.status)) throw stopped(now?.status ?? 'deleted');
    };
    /** A progress update with one event of the job's log; storage keeps a final state, which stops the job here. */
    const update = async (patch: Parameters<Storage['updateJob']>[1], event: string, line: string): Promise<void> => {
      const row = await logJob(storage, jobId, event, line, patch);
      if (FINAL.has(row.status)) throw stopped(row.status);
    };
    const need = async (kind: 'public_context' | 'train_data' | 'model'): Promise<Uint8Array> => {
      const b = await storage.getBlob(userId, modelId, kind);
      if (b === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no ${kind} uploaded`, { param: kind });
      return b;
    };
    const ctx = await deserializePublicContext(await need('public_context'), 'publicContext');
    try {
      const checkpoint = startEpoch > 0 ? await storage.getBlob(userId, modelId, 'trained_model') : undefined;
      let refreshes = typeof job.figures['refreshes'] === 'number' ? job.figures['refreshes'] : 0;
      // Wall time of each finished epoch (refresh waits included), for the console's chart; a resumed job keeps the epochs it had.
      const epochMs = (Array.isArray(job.figures['epochMs']) ? (job.figures['epochMs'] as number[]) : []).slice(0, startEpoch);
      let epochStart = performance.now();
      await update({ status: 'running' }, 'running', startEpoch > 0 ? `resumed at epoch ${startEpoch + 1} of ${hyper.numberOfEpochs}` : `training started: ${hyper.numberOfEpochs} epochs`);
      const r = await trainEncrypted(ctx, await need('train_data'), checkpoint ?? (await need('model')), hyper, {
        onEpoch: async (epoch, weights) => {
          await live();
          await storage.putBlob(userId, modelId, 'trained_model', weights);
          const ms = Math.round(performance.now() - epochStart);
          epochStart = performance.now();
          epochMs.push(ms);
          await update({ progress: epoch / hyper.numberOfEpochs, state: { ...job.state, epoch }, figures: { epochsDone: epoch, refreshes, epochMs: [...epochMs] } }, 'epoch', `epoch ${epoch} of ${hyper.numberOfEpochs} done in ${(ms / 1000).toFixed(1)} s`);
        },
        refresh: async (weights, epoch) => {
          await live();
          await storage.deleteBlob(userId, modelId, 'refresh_reply');
          await storage.putBlob(userId, modelId, 'refresh_request', weights);
          const since = Date.now();
          await update({ status: 'awaiting_refresh', figures: { refreshes, refreshEpoch: epoch, refreshDeadline: since + refreshTimeoutMs } }, 'awaiting_refresh', `epoch ${epoch}: waiting for the gateway's refresh`);
          for (;;) {
            const reply = await storage.getBlob(userId, modelId, 'refresh_reply');
            if (reply !== undefined) {
              await storage.deleteBlob(userId, modelId, 'refresh_reply');
              await storage.deleteBlob(userId, modelId, 'refresh_request');
              refreshes++;
              await update({ status: 'running', figures: { refreshes } }, 'refreshed', `refresh ${refreshes} answered after ${((Date.now() - since) / 1000).toFixed(1)} s`);
              return reply;
            }
            await live();
            if (Date.now() - since > refreshTimeoutMs) {
              // The unanswered request is withdrawn; the job fails and no longer holds the user's inputs.
              await storage.deleteBlob(userId, modelId, 'refresh_request');
              throw new CipherMLError('CIPHERML_E_REFRESH_TIMEOUT', `the gateway did not answer the refresh of epoch ${epoch} within ${Math.round(refreshTimeoutMs / 1000)} s`, { param: '--refresh-timeout', details: { epoch, refreshTimeoutMs } });
            }
            await sleep(pollMs);
          }
        },
      }, startEpoch);
      await live();
      await storage.putBlob(userId, modelId, 'trained_model', r.weights);
      await storage.addUsage(userId, modelId, 'trainMs', r.trainMs);
      await storage.addUsage(userId, modelId, 'fitJobs', 1);
      await logJob(storage, jobId, 'succeeded', `trained in ${(r.trainMs / 1000).toFixed(1)} s`, { status: 'succeeded', progress: 1, figures: { trainMs: Math.round(r.trainMs), epochs: hyper.numberOfEpochs, refreshes } });
    } finally {
      ctx.delete();
    }
  } catch (e) {
    const err = e instanceof CipherMLError ? { code: e.code, message: e.message } : { code: 'CIPHERML_E_JOB_FAILED', message: (e as Error).message };
    await logJob(storage, jobId, 'failed', `${err.code}: ${err.message}`, { status: 'failed', error: err }).catch(() => undefined);
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
