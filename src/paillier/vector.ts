import { availableParallelism } from 'node:os';
import { WorkerPool, type WorkerPoolOptions } from '../core/worker-pool.ts';
import type { PaillierPrivateKey, PaillierPublicKey } from './keys.ts';
import type { ThresholdKeyShare } from './threshold.ts';
import type { PaillierTask } from './worker.ts';
import { assertSameKey } from './ciphertext.ts';
import { RandomizerStock } from './randomizers.ts';
import { DEFAULT_PACKING, PackedCiphertext, PackingLayout, decryptPacked, encryptPacked, finishUnpack, type DecryptPackedOptions, type EncryptPackedOptions } from './packing.ts';

/**
 * Packed vector encryption and decryption spread over worker threads. Results are identical to
 * the in-thread encryptPacked/decryptPacked (same layout, same slot order); only the work is split
 * into contiguous chunks of ciphertexts, one task per chunk.
 */

/**
 * Where the work runs: a pool, a worker count (0 = this thread), or `auto` (all cores). Public-key
 * work goes to the shared pool; secret-key work to the key holder's own pool ({@link keyHolderPool}).
 */
export type Parallelism = WorkerPool | number | 'auto';

/** Below this many ciphertexts the pool's messaging costs more than it saves. */
const MIN_PARALLEL_CIPHERTEXTS = 8;

let shared: WorkerPool | undefined;

function workerUrl(): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
}

/**
 * The process-wide Paillier pool (one worker per core), created on first use. Idle workers do not
 * keep the process alive.
 *
 * @example
 * ```ts
 * const pool = sharedPaillierPool();
 * await encryptVector(publicKey, values, { parallelism: pool });
 * ```
 */
export function sharedPaillierPool(): WorkerPool {
  shared ??= new WorkerPool(workerUrl(), availableParallelism());
  return shared;
}

/**
 * A new Paillier pool with `size` workers (close it when done). `options.resourceLimits` caps each
 * thread's heap (a thread over it dies and its task fails with CIPHERML_E_WORKER_FAILED).
 *
 * @example
 * ```ts
 * const pool = createPaillierPool(4);
 * try { await decryptVector(privateKey, sum, { parallelism: pool }); } finally { await pool.close(); }
 * ```
 */
export function createPaillierPool(size: number = availableParallelism(), options: WorkerPoolOptions = {}): WorkerPool {
  return new WorkerPool(workerUrl(), size, options);
}

/** Secret → the threads that alone receive it; a pool closes once its secret is collected. */
const holderPools = new WeakMap<PaillierPrivateKey | ThresholdKeyShare, WorkerPool>();
const closeWithSecret = new FinalizationRegistry<WorkerPool>((pool) => void pool.close());

/**
 * The worker threads of one secret-key holder (a private key or a threshold key share), created
 * on its first pooled decryption with `size` threads. Invariant: the secret is posted only to
 * these threads, and they run only tasks under it — never the shared pool's encryptions, which in
 * an in-process run serve other parties — so a key never enters a thread another party's work
 * runs on. Idle threads do not keep the process alive; the pool closes when the secret object is
 * garbage-collected.
 *
 * @example
 * ```ts
 * const sums = await decryptVector(privateKey, sum, { parallelism: keyHolderPool(privateKey) });
 * ```
 */
export function keyHolderPool(secret: PaillierPrivateKey | ThresholdKeyShare, size: number = availableParallelism()): WorkerPool {
  let pool = holderPools.get(secret);
  if (pool === undefined) {
    pool = createPaillierPool(size);
    holderPools.set(secret, pool);
    closeWithSecret.register(secret, pool);
  }
  return pool;
}

function resolvePool(p: Parallelism | undefined, count: number, secret?: PaillierPrivateKey): WorkerPool | null {
  if (p === 0 || count < MIN_PARALLEL_CIPHERTEXTS) return null;
  const own = (size: number): WorkerPool => (secret === undefined ? sharedPaillierPool() : keyHolderPool(secret, size));
  if (p === undefined || p === 'auto') return availableParallelism() > 1 ? own(availableParallelism()) : null;
  if (typeof p === 'number') return p <= 1 ? null : own(p);
  return p;
}

function chunks<T>(items: readonly T[], pool: WorkerPool): { start: number; part: T[] }[] {
  const size = Math.max(1, Math.ceil(items.length / (pool.size * 4)));
  const out: { start: number; part: T[] }[] = [];
  for (let i = 0; i < items.length; i += size) out.push({ start: i, part: items.slice(i, i + size) });
  return out;
}

/** Options of {@link encryptVector}. */
export interface EncryptVectorOptions extends EncryptPackedOptions {
  readonly parallelism?: Parallelism;
}

/**
 * Encrypts a vector of reals, packed, on all cores.
 *
 * @example
 * ```ts
 * const enc = await encryptVector(publicKey, weights);          // Float64Array → PackedCiphertext
 * const bytes = serializePacked(enc);                             // ready for the wire
 * ```
 */
export async function encryptVector(publicKey: PaillierPublicKey, values: ArrayLike<number>, options: EncryptVectorOptions = {}): Promise<PackedCiphertext> {
  const layout = PackingLayout.forKey(publicKey, options.packing ?? DEFAULT_PACKING);
  const obf = options.obfuscate ?? true;
  if (options.randomizers !== undefined && obf !== true && obf !== 'djn') return encryptPacked(publicKey, values, options); // refuses with a typed error
  // Precomputed randomizers first: one multiplication per ciphertext, in this thread.
  const pre = options.randomizers?.take(publicKey, layout.ciphertextsFor(values.length)) ?? [];
  const pool = resolvePool(options.parallelism, layout.ciphertextsFor(values.length) - pre.length);
  if (pool === null) return encryptPacked(publicKey, values, { ...options, ...(pre.length === 0 ? {} : { randomizers: new RandomizerStock(publicKey, pre) }) });
  const plaintexts = layout.pack(values);
  const n2 = publicKey.nSquared;
  const head = pre.map((rho, i) => (((1n + plaintexts[i]! * publicKey.n) % n2) * rho) % n2);
  const obfuscate = obf === false ? false : obf === true ? 'djn' : obf;
  const parts = await Promise.all(
    chunks(plaintexts.slice(pre.length), pool).map(({ part }) =>
      pool.run<bigint[]>({ kind: 'encrypt', n: publicKey.n, hs: publicKey.hs, backend: publicKey.backend.name, plaintexts: part, obfuscate } satisfies PaillierTask),
    ),
  );
  return new PackedCiphertext(publicKey, layout, values.length, 1, [...head, ...parts.flat()], obf !== false);
}

/**
 * Computes `count` DJN randomizers of `publicKey` on all cores, for later encryptions (see
 * {@link RandomizerStock}): a party computes them while it waits, so its next encryption is one
 * multiplication per ciphertext.
 *
 * @example
 * ```ts
 * const stock = await precomputeRandomizers(publicKey, layout.ciphertextsFor(weights.length));
 * const enc = await encryptVector(publicKey, weights, { randomizers: stock });
 * ```
 */
export async function precomputeRandomizers(publicKey: PaillierPublicKey, count: number, options: { readonly parallelism?: Parallelism } = {}): Promise<RandomizerStock> {
  const pool = resolvePool(options.parallelism, count);
  if (pool === null) return new RandomizerStock(publicKey, publicKey.randomizers(count));
  const size = Math.max(1, Math.ceil(count / (pool.size * 4)));
  const parts: Promise<bigint[]>[] = [];
  for (let i = 0; i < count; i += size) {
    parts.push(pool.run<bigint[]>({ kind: 'randomizers', n: publicKey.n, hs: publicKey.hs, backend: publicKey.backend.name, count: Math.min(size, count - i) } satisfies PaillierTask));
  }
  return new RandomizerStock(publicKey, (await Promise.all(parts)).flat());
}

/** Options of {@link decryptVector}. */
export interface DecryptVectorOptions extends DecryptPackedOptions {
  readonly parallelism?: Parallelism;
}

/**
 * Decrypts a packed vector on all cores to the slot-wise sum (or mean) of its contributions: the
 * CRT decryptions (Paillier 1999, §7) are independent per ciphertext, so contiguous chunks run on
 * the key holder's own threads ({@link keyHolderPool}) unless `parallelism` names a pool. Equal to
 * {@link decryptPacked}; a thread that dies fails the call with CIPHERML_E_WORKER_FAILED.
 *
 * @example
 * ```ts
 * const mean = await decryptVector(privateKey, PackedCiphertext.sum(updates), { mean: true });
 * ```
 */
export async function decryptVector(privateKey: PaillierPrivateKey, packed: PackedCiphertext, options: DecryptVectorOptions = {}): Promise<Float64Array> {
  assertSameKey(privateKey, packed.fingerprint, 'packed');
  const pool = resolvePool(options.parallelism, packed.values.length, privateKey);
  if (pool === null) return decryptPacked(privateKey, packed, options);
  const pk = privateKey.publicKey;
  const parts = await Promise.all(
    chunks(packed.values, pool).map(({ start, part }) =>
      pool.run<bigint[]>({ kind: 'decrypt', n: pk.n, hs: pk.hs, p: privateKey.p, q: privateKey.q, backend: pk.backend.name, ciphertexts: part, firstIndex: start } satisfies PaillierTask),
    ),
  );
  return finishUnpack(packed, parts.flat(), options);
}
