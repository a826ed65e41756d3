import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, threadId } from 'node:worker_threads';
import TinyQueue from 'tinyqueue';
import type { CkksContext, CkksVector } from '../ckks/index.ts';
import type { CiphertextRecord } from '../ckks/index.ts';
import { deserializePublicContext, deserializeSecretKey, encryptRecord, loadCiphertext, saveCiphertext } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { sealMemory } from '../ckks/seal.ts';
import { errorToReply } from '../core/worker-pool.ts';
import type { BatchInstr } from './batch.ts';
import { instrOperands, runBatchInstr } from './batch.ts';

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
      /** Bytes of ciphertexts this thread keeps in SEAL's heap; more are spilled (see {@link Spill}). */
      readonly heapBytes: number;
      /** WebAssembly memory past which the run stops (HEAP_LIMIT; lower only in tests). */
      readonly wasmLimit: number;
    }
  /** A value another thread made, for the running program. */
  | { readonly kind: 'value'; readonly id: number; readonly record: CiphertextRecord }
  /** Another thread failed: stop waiting. */
  | { readonly kind: 'abort' }
  | { readonly kind: 'reset' };

/** Reply to a run. */
export interface RunResult {
  readonly ms: number;
  /** Ciphertexts serialized out of SEAL's heap, and loaded back, during the run. */
  readonly spills: number;
  readonly reloads: number;
  /** Most bytes of ciphertexts held in SEAL's heap at once. */
  readonly peakHeapBytes: number;
  /** SEAL's WebAssembly memory after the run (it never shrinks: the thread's peak so far). */
  readonly wasmBytes: number;
}

/**
 * Keeps a thread's ciphertexts within a byte budget of SEAL's heap (a 32-bit WebAssembly memory:
 * at most 4 GiB for keys, values and SEAL's pool). Over budget, the value whose next use on this
 * thread is farthest away is serialized to a file in a private temporary folder (not to the
 * process's memory: LeNet-5 Relu's spilled values held in JavaScript memory took the process to
 * 24 GiB and the kernel killed it; files leave the page cache to the kernel) and freed in SEAL
 * (Belady's rule: with the whole instruction sequence known, it is the eviction that loads the
 * fewest values back); it is loaded again at its next use. The operands of the instruction about
 * to run are never evicted, so a budget below one instruction's operands is exceeded by that
 * instruction rather than failing (the caller bounds a combination's operands: LC_CHUNK).
 */
class Spill {
  readonly #uses = new Map<number, number[]>();
  readonly #cursor = new Map<number, number>();
  readonly #queue = new TinyQueue<readonly [number, number]>([], (a, b) => b[0] - a[0]);
  readonly #bytes = new Map<number, number>();
  /** Spilled value id ↦ its meaningful slot count; the bytes are in `#dir`/id. */
  readonly #spilled = new Map<number, number>();
  readonly #budget: number;
  /** Words of one polynomial (N): a ciphertext holds size × primes × N of them. */
  readonly #n: number;
  /** Made at the first eviction (most runs never spill). */
  #dir: string | undefined;
  resident = 0;
  peak = 0;
  spills = 0;
  reloads = 0;

  constructor(instrs: readonly BatchInstr[], budget: number, n: number) {
    this.#budget = budget;
    this.#n = n;
    instrs.forEach((ins, i) => {
      for (const id of instrOperands(ins)) {
        const u = this.#uses.get(id);
        if (u === undefined) this.#uses.set(id, [i]);
        else u.push(i);
      }
    });
  }

  /** Index of the first use of `id` after instruction `now` (Infinity: none). */
  nextUse(id: number, now: number): number {
    const u = this.#uses.get(id);
    if (u === undefined) return Infinity;
    let c = this.#cursor.get(id) ?? 0;
    while (c < u.length && u[c]! <= now) c++;
    this.#cursor.set(id, c);
    return u[c] ?? Infinity;
  }

  isSpilled(id: number): boolean {
    return this.#spilled.has(id);
  }

  /** Removes the spill folder (end of a run, or its failure). */
  close(): void {
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
  }

  #path(id: number): string {
    this.#dir ??= mkdtempSync(join(tmpdir(), 'cipherml-spill-'));
    return join(this.#dir, String(id));
  }

  /** `v` (value `id`) is now in SEAL's heap, next used after instruction `now`. */
  admit(id: number, v: CkksVector, now: number): void {
    const bytes = v.ct.size() * (v.level + 1) * this.#n * 8;
    this.#bytes.set(id, bytes);
    this.resident += bytes;
    this.peak = Math.max(this.peak, this.resident);
    this.touch(id, now);
  }

  /** Records `id`'s next use after instruction `now` (after it was read). */
  touch(id: number, now: number): void {
    this.#queue.push([this.nextUse(id, now), id]);
  }

  /** Value `id` freed for good. */
  drop(id: number): void {
    this.resident -= this.#bytes.get(id) ?? 0;
    this.#bytes.delete(id);
    if (this.#spilled.delete(id)) unlinkSync(this.#path(id));
  }

  /** Loads a spilled value back. */
  reload(c: CkksContext, id: number): CkksVector {
    const length = this.#spilled.get(id)!;
    const path = this.#path(id);
    const bytes = readFileSync(path);
    this.#spilled.delete(id);
    unlinkSync(path);
    this.reloads++;
    return loadCiphertext(c, { length, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) }, `value ${id}`);
  }

  /** Evicts values (never those in `keep`) until the budget holds or nothing else can go. */
  fit(values: Map<number, CkksVector>, keep: ReadonlySet<number>, now: number): void {
    const held: (readonly [number, number])[] = [];
    while (this.resident > this.#budget && this.#queue.length > 0) {
      const entry = this.#queue.pop()!;
      const [use, id] = entry;
      const v = values.get(id);
      // Stale entries: the value left the heap, or was read since (a newer entry holds its next use).
      if (v === undefined || use !== this.nextUse(id, now)) continue;
      if (keep.has(id)) {
        held.push(entry);
        continue;
      }
      const record = saveCiphertext(v);
      writeFileSync(this.#path(id), record.bytes);
      this.#spilled.set(id, record.length);
      v.delete();
      values.delete(id);
      this.resident -= this.#bytes.get(id) ?? 0;
      this.#bytes.delete(id);
      this.spills++;
    }
    for (const e of held) this.#queue.push(e);
  }
}

/**
 * Past this much WebAssembly memory a run stops with a typed error: at the 4 GiB limit SEAL's
 * allocations neither fail nor finish (LeNet-5 Relu: both threads spun at 100 % CPU inside one
 * instruction for minutes with the heap at 4,096 MiB), so the run is stopped while one more
 * ciphertext's working set still fits.
 */
const HEAP_LIMIT = 3.75 * 2 ** 30;

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
  const spill = new Spill(msg.instrs, msg.heapBytes, 2 * c.slotCount);
  const present = async (id: number, now: number): Promise<void> => {
    if (values.has(id)) return;
    if (spill.isSpilled(id)) {
      values.set(id, spill.reload(c, id));
    } else {
      const record = fresh.get(id);
      if (record !== undefined) {
        fresh.delete(id);
        const v = loadCiphertext(c, record, `input[${id}]`);
        values.set(id, v);
        if (v.level !== msg.inputLevel) throw new CipherMLError('CIPHERML_E_CKKS_CIPHERTEXT_INVALID', `input ciphertext ${id} is at level ${v.level}, a fresh encryption is at ${msg.inputLevel}`, { param: 'input' });
      } else {
        while (!inbox.has(id)) await arrival(id);
        const received = inbox.get(id)!;
        inbox.delete(id);
        values.set(id, loadCiphertext(c, received, `value ${id}`));
      }
    }
    spill.admit(id, values.get(id)!, now - 1);
  };
  try {
    const step = Math.max(1, Math.floor(msg.instrs.length / 100));
    for (let i = 0; i < msg.instrs.length; i++) {
      const ins = msg.instrs[i]!;
      const ops = instrOperands(ins);
      const keep = new Set(ops);
      for (const id of ops) {
        if (values.has(id)) continue;
        spill.fit(values, keep, i - 1);
        await present(id, i);
      }
      runBatchInstr(c, values, ins);
      for (const id of keep) spill.touch(id, i);
      spill.admit(ins.out, values.get(ins.out)!, i);
      const to = sendTo.get(ins.out);
      if (to !== undefined) {
        const record = saveCiphertext(values.get(ins.out)!);
        parentPort!.postMessage({ id: 0, forward: { id: ins.out, record, to } }, [record.bytes.buffer as ArrayBuffer]);
      }
      for (const id of msg.frees[i] ?? []) {
        values.get(id)?.delete();
        values.delete(id);
        spill.drop(id);
      }
      spill.fit(values, new Set(), i);
      const wasm = sealMemory()?.buffer.byteLength ?? 0;
      if (wasm > Math.min(HEAP_LIMIT, msg.wasmLimit)) {
        throw new CipherMLError('CIPHERML_E_HE_HEAP_EXHAUSTED', `inference thread ${threadId}: SEAL's heap reached ${(wasm / 2 ** 20).toFixed(0)} MiB of 4096 with ${(spill.resident / 2 ** 20).toFixed(0)} MiB of ciphertexts held (budget ${(msg.heapBytes / 2 ** 20).toFixed(0)} MiB), at instruction ${i + 1} of ${msg.instrs.length}`, {
          param: 'heapMiB',
          details: { wasmBytes: wasm, residentBytes: spill.resident, heapBytes: msg.heapBytes },
        });
      }
      if ((i + 1) % step === 0 || i + 1 === msg.instrs.length) parentPort!.postMessage({ id: 0, progress: i + 1 });
    }
  } finally {
    spill.close();
  }
  reset();
  return { ms: performance.now() - t0, spills: spill.spills, reloads: spill.reloads, peakHeapBytes: spill.peak, wasmBytes: sealMemory()?.buffer.byteLength ?? 0 } satisfies RunResult;
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
