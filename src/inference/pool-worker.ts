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
      readonly kind: 'run';
      /** Program inputs this thread reads (fresh encryptions), loaded at first use. */
      readonly load: readonly { readonly id: number; readonly record: CiphertextRecord }[];
      readonly inputs: number;
      readonly inputLevel: number;
      /** In execution order (see schedulePool). */
      readonly instrs: readonly BatchInstr[];
      /** Value id ↦ threads to send it to as soon as it is made (−1: the caller). */
      readonly send: readonly (readonly [number, readonly number[]])[];
      /** frees[i]: values to free after instruction i. */
      readonly frees: readonly (readonly number[])[];
    }
  /** A value another thread made, for the running program. */
  | { readonly kind: 'value'; readonly id: number; readonly record: CiphertextRecord }
  /** Another thread failed: stop waiting. */
  | { readonly kind: 'abort' }
  | { readonly kind: 'reset' };

/** Reply to a run. */
export interface RunResult {
  readonly ms: number;
}

let ctx: CkksContext | undefined;
const values = new Map<number, CkksVector>();
/** Values other threads sent, not yet needed. */
const inbox = new Map<number, CiphertextRecord>();
let waiting: { readonly id: number; readonly resolve: () => void; readonly reject: (e: unknown) => void } | undefined;

function reset(): void {
  for (const v of values.values()) v.delete();
  values.clear();
  inbox.clear();
}

function receive(msg: PoolMessage): void {
  if (msg.kind === 'value') {
    inbox.set(msg.id, msg.record);
    if (waiting?.id === msg.id) waiting.resolve();
  } else if (msg.kind === 'abort') {
    waiting?.reject(new CipherMLError('CIPHERML_E_WORKER_FAILED', 'another pool thread failed', { param: 'pool' }));
  }
}

/** Resolves once value `id` is in the inbox. */
function arrival(id: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    waiting = { id, resolve: () => resolve(), reject };
  }).finally(() => {
    waiting = undefined;
  });
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
  if (msg.kind !== 'run') throw new CipherMLError('CIPHERML_E_WORKER_FAILED', `unexpected message ${msg.kind}`, { param: 'pool' });
  const c = ctx;
  const t0 = performance.now();
  const fresh = new Map(msg.load.map(({ id, record }) => [id, record]));
  const sendTo = new Map(msg.send);
  const present = async (id: number): Promise<void> => {
    if (values.has(id)) return;
    let record = fresh.get(id);
    if (record !== undefined) {
      fresh.delete(id);
      const v = loadCiphertext(c, record, `input[${id}]`);
      values.set(id, v);
      if (v.level !== msg.inputLevel) throw new CipherMLError('CIPHERML_E_CKKS_CIPHERTEXT_INVALID', `input ciphertext ${id} is at level ${v.level}, a fresh encryption is at ${msg.inputLevel}`, { param: 'input' });
      return;
    }
    while (!inbox.has(id)) await arrival(id);
    record = inbox.get(id)!;
    inbox.delete(id);
    values.set(id, loadCiphertext(c, record, `value ${id}`));
  };
  const step = Math.max(1, Math.floor(msg.instrs.length / 100));
  for (let i = 0; i < msg.instrs.length; i++) {
    const ins = msg.instrs[i]!;
    for (const id of operandsOf(ins)) if (!values.has(id)) await present(id);
    runBatchInstr(c, values, ins);
    const to = sendTo.get(ins.out);
    if (to !== undefined) {
      const record = saveCiphertext(values.get(ins.out)!);
      parentPort!.postMessage({ id: 0, forward: { id: ins.out, record, to } }, [record.bytes.buffer as ArrayBuffer]);
    }
    for (const id of msg.frees[i] ?? []) {
      values.get(id)?.delete();
      values.delete(id);
    }
    if ((i + 1) % step === 0 || i + 1 === msg.instrs.length) parentPort!.postMessage({ id: 0, progress: i + 1 });
  }
  reset();
  return { ms: performance.now() - t0 } satisfies RunResult;
}

function operandsOf(ins: BatchInstr): readonly number[] {
  switch (ins.op) {
    case 'lc':
    case 'sum':
      return ins.ins;
    case 'mul':
      return [ins.a, ins.b];
    case 'toLevel':
    case 'copy':
      return [ins.a];
    case 'const':
      return [];
  }
}

parentPort?.on('message', ({ id, msg }: { id: number; msg: PoolMessage }) => {
  if (msg.kind === 'value' || msg.kind === 'abort') return receive(msg);
  handle(msg).then(
    (result) => {
      const records = msg.kind === 'encrypt' ? (result as CiphertextRecord[]) : [];
      const transfer = records.map((r) => r.bytes.buffer as ArrayBuffer);
      parentPort!.postMessage({ id, ok: true, result }, transfer);
    },
    (e: unknown) => {
      if (msg.kind === 'run') reset();
      parentPort!.postMessage({ id, ok: false, error: errorToReply(e) });
    },
  );
});
