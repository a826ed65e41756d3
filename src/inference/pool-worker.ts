import { parentPort } from 'node:worker_threads';
import type { CkksContext, CkksVector } from '../ckks/index.ts';
import type { CiphertextRecord } from '../ckks/index.ts';
import { deserializePublicContext, deserializeSecretKey, encryptRecord, loadCiphertext, saveCiphertext } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { errorToReply } from '../core/worker-pool.ts';
import type { BatchInstr } from './batch.ts';
import { runBatchInstr } from './batch.ts';

/**
 * One thread of an {@link InferencePool}: its own SEAL instance and public context (without
 * Galois keys), and the ciphertexts of the current program that live here (value id ↦ vector).
 * Wire contract: `{ id, msg }` in; `{ id, ok: true, result }` or `{ id, ok: false, error }` out.
 */

/** Messages from the pool. */
export type PoolMessage =
  | { readonly kind: 'init'; readonly publicKey: Uint8Array }
  /** Client side: load the secret key (seeded encryption), for {@link EncryptionPool}. */
  | { readonly kind: 'initSecret'; readonly secretKey: Uint8Array }
  | { readonly kind: 'encrypt'; readonly vectors: readonly Float64Array[] }
  | {
      readonly kind: 'wave';
      /** Values to load first; ids below `inputs` are program inputs and must be fresh. */
      readonly load: readonly { readonly id: number; readonly record: CiphertextRecord }[];
      readonly inputs: number;
      readonly inputLevel: number;
      readonly instrs: readonly BatchInstr[];
      /** Values to hand back after the wave (to other threads, or outputs). */
      readonly send: readonly number[];
      /** Values no later wave on this thread needs. */
      readonly free: readonly number[];
    }
  | { readonly kind: 'reset' };

/** Reply to a wave. */
export interface WaveResult {
  readonly sent: { readonly id: number; readonly record: CiphertextRecord }[];
  readonly ms: number;
}

let ctx: CkksContext | undefined;
const values = new Map<number, CkksVector>();

function reset(): void {
  for (const v of values.values()) v.delete();
  values.clear();
}

async function handle(msg: PoolMessage): Promise<unknown> {
  if (msg.kind === 'init') {
    ctx?.delete();
    ctx = await deserializePublicContext(msg.publicKey, 'key', { galoisKeys: false });
    return { fingerprint: ctx.fingerprint };
  }
  if (msg.kind === 'initSecret') {
    ctx?.delete();
    ctx = await deserializeSecretKey(msg.secretKey, 'secretKey');
    return { fingerprint: ctx.fingerprint };
  }
  if (msg.kind === 'encrypt') {
    if (ctx?.hasSecretKey !== true) throw new CipherMLError('CIPHERML_E_WORKER_FAILED', 'the encryption thread has no secret key yet', { param: 'pool' });
    const c = ctx;
    return msg.vectors.map((v) => encryptRecord(c, v));
  }
  if (msg.kind === 'reset') {
    reset();
    return null;
  }
  if (ctx === undefined) throw new CipherMLError('CIPHERML_E_WORKER_FAILED', 'the inference thread has no key yet', { param: 'pool' });
  const t0 = performance.now();
  for (const { id, record } of msg.load) {
    const v = loadCiphertext(ctx, record, id < msg.inputs ? `input[${id}]` : `value ${id}`);
    values.get(id)?.delete();
    values.set(id, v);
    if (id < msg.inputs && v.level !== msg.inputLevel) {
      throw new CipherMLError('CIPHERML_E_CKKS_CIPHERTEXT_INVALID', `input ciphertext ${id} is at level ${v.level}, a fresh encryption is at ${msg.inputLevel}`, { param: 'input' });
    }
  }
  for (const ins of msg.instrs) runBatchInstr(ctx, values, ins);
  const sent = msg.send.map((id) => {
    const v = values.get(id);
    if (v === undefined) throw new CipherMLError('CIPHERML_E_WORKER_FAILED', `value ${id} is not on this thread`, { param: 'pool' });
    return { id, record: saveCiphertext(v) };
  });
  for (const id of msg.free) {
    values.get(id)?.delete();
    values.delete(id);
  }
  return { sent, ms: performance.now() - t0 } satisfies WaveResult;
}

parentPort?.on('message', ({ id, msg }: { id: number; msg: PoolMessage }) => {
  handle(msg).then(
    (result) => {
      const records = msg.kind === 'wave' ? (result as WaveResult).sent.map((s) => s.record) : msg.kind === 'encrypt' ? (result as CiphertextRecord[]) : [];
      const transfer = records.map((r) => r.bytes.buffer as ArrayBuffer);
      parentPort!.postMessage({ id, ok: true, result }, transfer);
    },
    (e: unknown) => {
      if (msg.kind === 'wave') reset();
      parentPort!.postMessage({ id, ok: false, error: errorToReply(e) });
    },
  );
});
