import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../paths.ts';

/**
 * Loader for the optional GMP accelerator (native/gmp, built at install time by
 * scripts/build-native.mjs). Every function here agrees bit for bit with the pure-BigInt backend
 * in ./bigint.ts, which stays the reference; when the addon is absent or `CIPHERML_NATIVE=0`,
 * {@link loadGmpBackend} returns null and callers use BigInt.
 *
 * Boundary encoding: non-negative integers cross into C as big-endian magnitudes; the addon
 * returns 0 as an empty Buffer, which {@link bufferToBigint} maps to 0n.
 */

/**
 * Fixed-base exponentiation with a precomputed table: base^exp mod mod for 0 ≤ exp < 2^maxExpBits.
 *
 * @example
 * ```ts
 * const fb = loadGmpBackend()!.fixedBase(4n, 497n, 16, 4);
 * fb.pow(13n);             // 445n
 * fb.powMany([0n, 13n]);   // [1n, 445n]
 * ```
 */
export interface FixedBasePow {
  readonly maxExpBits: number;
  pow(exp: bigint): bigint;
  powMany(exps: readonly bigint[]): bigint[];
}

/**
 * Modular exponentiation through system libgmp. All arguments are ≥ 0n and moduli > 1n
 * (RangeError otherwise); results are in [0, mod).
 *
 * @example
 * ```ts
 * const gmp = loadGmpBackend();
 * if (gmp !== null) gmp.powm(4n, 13n, 497n);   // 445n
 * ```
 */
export interface GmpBackend {
  readonly name: 'gmp';
  /** libgmp's own version string, e.g. "6.2.1". */
  readonly gmpVersion: string;
  /** mpz_powm: fastest, variable time (timing depends on exp). */
  powm(base: bigint, exp: bigint, mod: bigint): bigint;
  /** mpz_powm_sec: constant time in exp for secret exponents; mod must be odd. */
  powmSec(base: bigint, exp: bigint, mod: bigint): bigint;
  /**
   * Precomputes ⌈maxExpBits/windowBits⌉·(2^windowBits − 1) residues; each pow then costs one
   * mulmod per non-zero digit. The table is freed after GC once the event loop turns.
   * Sizing at a 4096-bit modulus and 1024-bit exponents: windowBits 8 → 16 MiB, ~0.17 s to build,
   * ~0.53 ms per pow; 6 → 5 MiB, ~0.69 ms; 10 → 52 MiB, 0.7 s, ~0.46 ms. Limit: 1 GiB per table.
   */
  fixedBase(base: bigint, mod: bigint, maxExpBits: number, windowBits: number): FixedBasePow;
  /** mpz_gcd of two non-negative integers. */
  gcd(a: bigint, b: bigint): bigint;
}

declare const nativeTableBrand: unique symbol;
/** Opaque External holding a C fixed-base table. */
interface NativeTable {
  readonly [nativeTableBrand]: never;
}

/** The addon's exports (native/gmp/src/cipherml_gmp.c). */
interface NativeGmp {
  powm(base: Uint8Array, exp: Uint8Array, mod: Uint8Array): Buffer;
  powmSec(base: Uint8Array, exp: Uint8Array, mod: Uint8Array): Buffer;
  fixedBaseCreate(base: Uint8Array, mod: Uint8Array, maxExpBits: number, windowBits: number): NativeTable;
  fixedBasePow(table: NativeTable, exp: Uint8Array): Buffer;
  fixedBasePowMany(table: NativeTable, exps: Uint8Array[]): Buffer[];
  version(): string;
  gcd(a: Uint8Array, b: Uint8Array): Buffer;
}

const ADDON_RELATIVE_PATH = join('native', 'gmp', 'build', 'Release', 'cipherml_gmp.node');

/**
 * Non-negative bigint → big-endian magnitude with no leading zero bytes; 0n → empty Buffer.
 *
 * @example
 * ```ts
 * bigintToBuffer(0x1234n);   // <Buffer 12 34>
 * bigintToBuffer(0n);        // <Buffer >
 * ```
 */
export function bigintToBuffer(x: bigint): Buffer {
  if (x < 0n) throw new RangeError('bigintToBuffer: x must be >= 0n');
  if (x === 0n) return Buffer.alloc(0);
  const hex = x.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
}

/**
 * Big-endian magnitude → bigint; leading zero bytes are allowed and an empty array is 0n.
 *
 * @example
 * ```ts
 * bufferToBigint(Buffer.from([0x12, 0x34]));   // 0x1234n
 * bufferToBigint(new Uint8Array(0));           // 0n
 * ```
 */
export function bufferToBigint(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return BigInt(`0x${buf.toString('hex')}`);
}

/** The built addon inside cipherml's package folder (from src/ or dist/src/ alike), or null. */
function findAddon(): string | null {
  const addon = join(packageRoot(), ADDON_RELATIVE_PATH);
  return existsSync(addon) ? addon : null;
}

function nonNegative(fn: string, name: string, x: bigint): void {
  if (x < 0n) throw new RangeError(`gmp.${fn}: ${name} must be >= 0n`);
}

function modulus(fn: string, mod: bigint): void {
  if (mod <= 1n) throw new RangeError(`gmp.${fn}: mod must be > 1n`);
}

function wrap(native: NativeGmp): GmpBackend {
  const toBuf = bigintToBuffer;
  const toBig = bufferToBigint;
  return {
    name: 'gmp',
    gmpVersion: native.version(),
    powm(base, exp, mod) {
      nonNegative('powm', 'base', base);
      nonNegative('powm', 'exp', exp);
      modulus('powm', mod);
      return toBig(native.powm(toBuf(base), toBuf(exp), toBuf(mod)));
    },
    powmSec(base, exp, mod) {
      nonNegative('powmSec', 'base', base);
      nonNegative('powmSec', 'exp', exp);
      modulus('powmSec', mod);
      return toBig(native.powmSec(toBuf(base), toBuf(exp), toBuf(mod)));
    },
    gcd(a, b) {
      nonNegative('gcd', 'a', a);
      nonNegative('gcd', 'b', b);
      return toBig(native.gcd(toBuf(a), toBuf(b)));
    },
    fixedBase(base, mod, maxExpBits, windowBits) {
      nonNegative('fixedBase', 'base', base);
      modulus('fixedBase', mod);
      const table = native.fixedBaseCreate(toBuf(base), toBuf(mod), maxExpBits, windowBits);
      return {
        maxExpBits,
        pow(exp) {
          nonNegative('fixedBase.pow', 'exp', exp);
          return toBig(native.fixedBasePow(table, toBuf(exp)));
        },
        powMany(exps) {
          const bufs = exps.map((e, i) => {
            nonNegative('fixedBase.powMany', `exps[${i}]`, e);
            return toBuf(e);
          });
          return native.fixedBasePowMany(table, bufs).map(toBig);
        },
      };
    },
  };
}

/** undefined: not tried yet; null: tried and unavailable. */
let loaded: GmpBackend | null | undefined;

function tryLoad(): GmpBackend | null {
  const file = findAddon();
  if (file === null) return null;
  try {
    const native = createRequire(import.meta.url)(file) as NativeGmp;
    const backend = wrap(native);
    // Known answer: a stale or foreign binary never becomes the backend.
    if (backend.powm(4n, 13n, 497n) !== 445n || backend.powmSec(4n, 13n, 497n) !== 445n || backend.gcd(462n, 1071n) !== 21n) return null;
    return backend;
  } catch {
    return null;
  }
}

/**
 * The GMP backend, or null when `CIPHERML_NATIVE=0` is set or the addon is not built or fails to
 * load. The load is attempted once per thread; the environment variable is read on every call.
 *
 * @example
 * ```ts
 * const gmp = loadGmpBackend();
 * const r = gmp === null ? powmBigint(4n, 13n, 497n) : gmp.powm(4n, 13n, 497n);   // 445n
 * ```
 */
export function loadGmpBackend(): GmpBackend | null {
  if (process.env['CIPHERML_NATIVE'] === '0') return null;
  if (loaded === undefined) loaded = tryLoad();
  return loaded;
}
