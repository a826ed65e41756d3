import { createHash } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';
import { deserializePublicContext } from '../ckks/index.ts';
import type { KeyParams } from '../inference/calibrate.ts';
import { inferBytes } from '../inference/he.ts';
import { parseOnnx } from '../inference/onnx.ts';
import { logJob } from './job-log.ts';
import type { Storage } from './storage/index.ts';

/**
 * Runs one encrypted-inference job against storage: the owner's calibrated model (blobs of the
 * owner, `state.ownerId`), the user's evaluation keys and encrypted input; stores the encrypted
 * output (`inference_output`, its SHA-256 in the job's figures). Only public keys are loaded: the
 * service cannot decrypt the input or the output. A job cancelled (failed) while it ran keeps its
 * cancellation: the output is not stored.
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
    const graph = parseOnnx(await need(ownerId, 'inference_model', 'calibrated model (deploy the model for inference)'), 'inference/model');
    const keys = await need(userId, 'inference_keys', 'evaluation keys (PUT …/inference/keys)');
    const input = await need(userId, 'inference_input', 'encrypted input');
    await logJob(storage, jobId, 'running', 'encrypted inference started', { status: 'running', progress: 0 });
    const ctx = await deserializePublicContext(keys, 'inference/keys', { galoisKeys: kp.galoisSteps.length > 0 });
    let out: Uint8Array;
    const t0 = performance.now();
    try {
      out = inferBytes(ctx, graph, input);
    } finally {
      ctx.delete();
    }
    const ms = performance.now() - t0;
    if ((await storage.getJob(jobId))?.status !== 'running') return;
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
