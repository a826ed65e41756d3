import type { Worker } from 'node:worker_threads';
import { CipherMLError } from '../core/errors.ts';
import { logJob } from './job-log.ts';
import { ACTIVE_JOB_STATUSES } from './storage/index.ts';
import type { BlobKind, JobRow, Storage } from './storage/index.ts';

/**
 * The job lifecycle rules of the REST API (issue 17): an open job holds its user's inputs for the
 * model, a user cancels their own job, and every job is shown in one shape.
 */

/**
 * Blobs a fit job reads or checkpoints, and an inference job's keys and input: while a job of the
 * user is open for the model (one at a time, of either kind), uploads of these are refused.
 */
export const JOB_INPUTS: ReadonlySet<BlobKind> = new Set<BlobKind>(['public_context', 'model', 'train_data', 'trained_model', 'inference_keys', 'inference_input']);

/** A job as the API shows it (GET …/jobs/{jobId}, GET …/jobs). */
export function jobView(j: JobRow): { jobId: string; kind: JobRow['kind']; status: string; progress: number; error: JobRow['error']; figures: JobRow['figures']; createdAt: number; updatedAt: number } {
  return { jobId: j.id, kind: j.kind, status: j.status, progress: j.progress, error: j.error, figures: j.figures, createdAt: j.createdAt, updatedAt: j.updatedAt };
}

/**
 * Refuses, with `CIPHERML_E_JOB_ACTIVE` and before anything is stored, an upload that would change
 * the inputs of the user's open job for this model.
 *
 * @example
 * ```ts
 * await refuseIfJobOpen(storage, user.id, model.id, 'train_data', 'data/fit');
 * ```
 */
export async function refuseIfJobOpen(storage: Storage, userId: string, modelId: string, kind: BlobKind, param: string): Promise<void> {
  if (!JOB_INPUTS.has(kind)) return;
  const open = await storage.listJobs({ userId, modelId, status: ACTIVE_JOB_STATUSES });
  if (open.length === 0) return;
  const j = open[0]!;
  throw new CipherMLError('CIPHERML_E_JOB_ACTIVE', `job ${j.id} is ${j.status} and uses the stored ${kind}; the upload was refused and nothing was changed`, { param, details: { jobId: j.id, status: j.status } });
}

/**
 * Cancels an open job: it becomes `cancelled` (final: its worker never overwrites it), its refresh
 * exchange (a fit) or its encrypted input (an inference) is withdrawn, and a job running on a thread of this process is stopped at once. A
 * job already cancelled answers the same; one that succeeded or failed is a 409.
 *
 * @example
 * ```ts
 * const job = await cancelJob(storage, jobId, threads.get(jobId));
 * ```
 */
export async function cancelJob(storage: Storage, jobId: string, thread: Worker | undefined): Promise<JobRow> {
  const row = await logJob(storage, jobId, 'cancelled', 'cancelled by its user', { status: 'cancelled', error: { code: 'CIPHERML_E_JOB_CANCELLED', message: 'cancelled by its user' } });
  if (row.status !== 'cancelled') throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `job ${jobId} already ${row.status}`, { param: 'jobId', details: { status: row.status } });
  // Resolves once the thread has exited (at once if it already had).
  if (thread !== undefined) await thread.terminate();
  if (row.kind === 'infer') {
    await storage.deleteBlob(row.userId, row.modelId, 'inference_input');
  } else {
    await storage.deleteBlob(row.userId, row.modelId, 'refresh_request');
    await storage.deleteBlob(row.userId, row.modelId, 'refresh_reply');
  }
  return row;
}
