import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { CipherMLError } from '../core/errors.ts';
import type { KeyParams } from '../inference/calibrate.ts';
import { logJob } from './job-log.ts';
import type { Storage } from './storage/index.ts';

/**
 * Least time between two progress writes of one inference job, in milliseconds. The first step
 * reported is always written, so a model of two or more steps records a value strictly between 0
 * and 1 however fast it runs.
 */
export const INFER_PROGRESS_MIN_MS = 1000;
/** Progress events one inference job appends to its log: the first, then one per tenth of the work. */
const LOG_TENTHS = 10;

/** What the inference thread (infer-thread.ts) is given: copies of the stored bytes. */
export interface InferThreadData {
  readonly model: Uint8Array;
  readonly keys: Uint8Array;
  readonly input: Uint8Array;
  readonly galoisKeys: boolean;
}

/** A message of the inference thread: a finished step, the encrypted output, or the error that ended it. */
export type InferThreadReply =
  | { readonly kind: 'progress'; readonly done: number; readonly total: number; readonly what: string }
  | { readonly kind: 'output'; readonly bytes: Uint8Array }
  | { readonly kind: 'error'; readonly error: { code: string; message: string; param?: string } };

/** A copy that owns its buffer (a storage blob may be a view into a larger one), to transfer. */
const own = (b: Uint8Array): Uint8Array => new Uint8Array(b);

/**
 * Runs the executor on its own thread. `onProgress` gets each finished step (per layer for a batch
 * input, per plan step for a single one); `stop` terminates the thread, which then settles with
 * `undefined`.
 */
function inferOnThread(data: InferThreadData, onProgress: (done: number, total: number, what: string) => void): { result: Promise<Uint8Array | undefined>; stop(): void } {
  const w = new Worker(new URL(import.meta.url.endsWith('.ts') ? './infer-thread.ts' : './infer-thread.js', import.meta.url), {
    workerData: data,
    transferList: [data.model.buffer as ArrayBuffer, data.keys.buffer as ArrayBuffer, data.input.buffer as ArrayBuffer],
  });
  let stopped = false;
  const result = new Promise<Uint8Array | undefined>((resolve, reject) => {
    let settled: Uint8Array | CipherMLError | undefined;
    w.on('message', (m: InferThreadReply) => {
      if (m.kind === 'progress') onProgress(m.done, m.total, m.what);
      else settled = m.kind === 'output' ? m.bytes : CipherMLError.revive(m.error);
    });
    w.once('error', (e) => {
      settled ??= new CipherMLError('CIPHERML_E_WORKER_FAILED', `the inference thread failed: ${e.message}`, { param: 'jobId', cause: e });
    });
    w.once('exit', (code) => {
      if (stopped) resolve(undefined);
      else if (settled instanceof Uint8Array) resolve(settled);
      else reject(settled ?? new CipherMLError('CIPHERML_E_WORKER_FAILED', `the inference thread exited with code ${code} and no result`, { param: 'jobId' }));
    });
  });
  return {
    result,
    stop: () => {
      stopped = true;
      void w.terminate();
    },
  };
}

/**
 * Runs one encrypted-inference job against storage: the owner's calibrated model (blobs of the
 * owner, `state.ownerId`), the user's evaluation keys and encrypted input; stores the encrypted
 * output (`inference_output`, its SHA-256 in the job's figures). Only public keys are loaded: the
 * service cannot decrypt the input or the output. The executor runs on a thread of its own; each
 * finished step is written as the job's progress, at most once per {@link INFER_PROGRESS_MIN_MS}
 * (the first step always), with a log event for the first and for each further tenth. A job
 * cancelled (failed) while it ran keeps its cancellation: its thread is stopped at the next
 * progress write and the output is not stored.
 *
 * @example
 * ```ts
 * await runInferJob(storage, jobId);
 * ```
 */
export async function runInferJob(storage: Storage, jobId: string): Promise<void> {
  const job = await storage.getJob(jobId);
  if (job === undefined || job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled') return;
  const { userId, modelId } = job;
  try {
    const ownerId = job.state['ownerId'];
    if (typeof ownerId !== 'string') throw new CipherMLError('CIPHERML_E_JOB_FAILED', 'the job does not name the model owner', { param: 'jobId' });
    const need = async (user: string, kind: 'inference_model' | 'inference_keyparams' | 'inference_keys' | 'inference_input', what: string): Promise<Uint8Array> => {
      const b = await storage.getBlob(user, modelId, kind);
      if (b === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no ${what} stored`, { param: kind });
      return b;
    };
    const kp = JSON.parse(Buffer.from(await need(ownerId, 'inference_keyparams', 'keyparams (deploy the model for inference)')).toString('utf8')) as KeyParams;
    const model = own(await need(ownerId, 'inference_model', 'calibrated model (deploy the model for inference)'));
    const keys = own(await need(userId, 'inference_keys', 'evaluation keys (PUT …/inference/keys)'));
    const input = own(await need(userId, 'inference_input', 'encrypted input'));
    await logJob(storage, jobId, 'running', 'encrypted inference started', { status: 'running', progress: 0 });

    // Progress writes: one at a time, never after the job is final; a stopped job stops its thread.
    let lastWrite = 0;
    let loggedTenth = -1;
    let writing: Promise<void> | undefined;
    const thread: { run?: ReturnType<typeof inferOnThread> } = {};
    const onProgress = (done: number, total: number, what: string): void => {
      // The finished job writes 1 with its result.
      if (writing !== undefined || done >= total || total <= 0) return;
      const now = Date.now();
      if (lastWrite > 0 && now - lastWrite < INFER_PROGRESS_MIN_MS) return;
      lastWrite = now;
      const progress = done / total;
      const tenth = Math.floor(progress * LOG_TENTHS);
      const write = tenth > loggedTenth
        ? logJob(storage, jobId, 'progress', `step ${done} of ${total} done (${what}): ${(progress * 100).toFixed(1)} %`, { progress })
        : storage.updateJob(jobId, { progress });
      if (tenth > loggedTenth) loggedTenth = tenth;
      writing = write.then(
        (row) => {
          if (row.status !== 'running') thread.run?.stop();
        },
        () => undefined,
      ).finally(() => {
        writing = undefined;
      });
    };
    const t0 = performance.now();
    const run = inferOnThread({ model, keys, input, galoisKeys: kp.galoisSteps.length > 0 }, onProgress);
    thread.run = run;
    let out: Uint8Array | undefined;
    try {
      out = await run.result;
    } finally {
      await writing;
    }
    const ms = performance.now() - t0;
    if (out === undefined || (await storage.getJob(jobId))?.status !== 'running') return;
    const sha256 = createHash('sha256').update(out).digest('hex');
    await storage.putBlob(userId, modelId, 'inference_output', out, sha256);
    await storage.deleteBlob(userId, modelId, 'inference_input');
    await storage.addUsage(userId, modelId, 'inferMs', ms);
    await storage.addUsage(userId, modelId, 'inferJobs', 1);
    await logJob(storage, jobId, 'succeeded', `inference done in ${(ms / 1000).toFixed(1)} s; ${out.length} bytes of encrypted output`, { status: 'succeeded', progress: 1, figures: { inferMs: Math.round(ms), outputBytes: out.length, outputSha256: sha256 } });
  } catch (e) {
    const err = e instanceof CipherMLError ? { code: e.code, message: e.message } : { code: 'CIPHERML_E_JOB_FAILED', message: (e as Error).message };
    await logJob(storage, jobId, 'failed', `${err.code}: ${err.message}`, { status: 'failed', error: err }).catch(() => undefined);
  }
}
