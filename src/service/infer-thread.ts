import { parentPort, workerData } from 'node:worker_threads';
import { deserializePublicContext } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { inferBytes } from '../inference/he.ts';
import { parseOnnx } from '../inference/onnx.ts';
import type { InferThreadData, InferThreadReply } from './infer-job.ts';

// Worker-thread entry of one encrypted-inference job (infer-job.ts): the executor runs here, so the
// job's thread stays free to write its progress and to stop this thread on a cancel. Public keys only.
const { model, keys, input, galoisKeys } = workerData as InferThreadData;
const post = (reply: InferThreadReply, transfer: ArrayBuffer[] = []): void => parentPort!.postMessage(reply, transfer);
try {
  const graph = parseOnnx(model, 'inference/model');
  const ctx = await deserializePublicContext(keys, 'inference/keys', { galoisKeys });
  try {
    const out = inferBytes(ctx, graph, input, { onProgress: (done, total, what) => post({ kind: 'progress', done, total, what }) });
    // Transferred when the bytes own their buffer; copied otherwise.
    post({ kind: 'output', bytes: out }, out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? [out.buffer as ArrayBuffer] : []);
  } finally {
    ctx.delete();
  }
} catch (e) {
  post({ kind: 'error', error: e instanceof CipherMLError ? { code: e.code, message: e.message, ...(e.param === undefined ? {} : { param: e.param }) } : { code: 'CIPHERML_E_JOB_FAILED', message: e instanceof Error ? e.message : String(e) } });
}
