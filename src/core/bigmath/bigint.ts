import { randomBytes } from 'node:crypto';

/**
 * Pure-BigInt modular arithmetic: the reference backend that always works. The optional GMP
 * addon (./gmp.ts) must agree with it bit for bit (tested in bigmath.test.ts).
 */

/** Number of bits of a non-negative bigint (0 for 0n). */
export function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

/** Byte length of the big-endian magnitude of a non-negative bigint (at least 1). */
export function byteLength(x: bigint): number {
  return Math.max(1, Math.ceil(bitLength(x) / 8));
}

/** Non-negative bigint → big-endian bytes, left-padded to `length` when given. */
export function bigintToBytes(x: bigint, length?: number): Uint8Array {
  if (x < 0n) throw new RangeError('bigintToBytes: negative value');
  let hex = x.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const raw = Buffer.from(hex, 'hex');
  if (length === undefined) return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  if (raw.length > length) throw new RangeError(`bigintToBytes: value needs ${raw.length} bytes, field has ${length}`);
  const out = new Uint8Array(length);
  out.set(raw, length - raw.length);
  return out;
}

/** Big-endian bytes → non-negative bigint. */
export function bytesToBigint(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  return BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`);
}

/** Uniform random bigint in [0, 2^bits). */
export function randomBits(bits: number): bigint {
  const bytes = randomBytes(Math.ceil(bits / 8));
  const excess = bytes.length * 8 - bits;
  if (excess > 0) bytes[0] = bytes[0]! & (0xff >> excess);
  return bytesToBigint(bytes);
}

/** Uniform random bigint in [1, bound) by rejection sampling. */
export function randomBelow(bound: bigint): bigint {
  const bits = bitLength(bound);
  for (;;) {
    const r = randomBits(bits);
    if (r > 0n && r < bound) return r;
  }
}

/** Greatest common divisor (Euclid). */
export function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Modular inverse of a mod m; throws RangeError when gcd(a, m) ≠ 1. */
export function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [((a % m) + m) % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError('modInverse: not invertible');
  return ((s0 % m) + m) % m;
}

/**
 * base^exp mod mod by left-to-right sliding windows (window 5: 16 odd powers precomputed),
 * exp ≥ 0, mod > 1. Not constant-time: V8 BigInt offers no constant-time primitives.
 */
export function powmBigint(base: bigint, exp: bigint, mod: bigint): bigint {
  if (exp < 0n) throw new RangeError('powm: negative exponent');
  if (mod <= 1n) throw new RangeError('powm: modulus must be > 1');
  base %= mod;
  if (base < 0n) base += mod;
  if (exp === 0n) return 1n;
  const bits = exp.toString(2);
  const w = bits.length > 256 ? 5 : bits.length > 32 ? 4 : 1;
  const sq = (base * base) % mod;
  const odd: bigint[] = [base];
  for (let i = 1; i < 1 << (w - 1); i++) odd.push((odd[i - 1]! * sq) % mod);
  let acc = 1n;
  let i = 0;
  while (i < bits.length) {
    if (bits[i] === '0') {
      acc = (acc * acc) % mod;
      i++;
      continue;
    }
    let j = Math.min(i + w, bits.length);
    while (bits[j - 1] === '0') j--;
    for (let k = i; k < j; k++) acc = (acc * acc) % mod;
    acc = (acc * odd[(parseInt(bits.slice(i, j), 2) - 1) >> 1]!) % mod;
    i = j;
  }
  return acc;
}

/** Fixed-base exponentiation with a precomputed table: base^e for many e ≤ 2^maxExpBits. */
export interface FixedBasePow {
  readonly maxExpBits: number;
  pow(exp: bigint): bigint;
  powMany(exps: readonly bigint[]): bigint[];
}

/**
 * Fixed-base windowed table (Brickell–Gordon–McCurley–Wilson style): T[i][d] = base^(d·2^(w·i)),
 * so base^e = Π_i T[i][e_i] for the w-bit digits e_i of e — ⌈maxExpBits/w⌉ − 1 multiplications and
 * no squarings per exponentiation.
 */
export function fixedBaseBigint(base: bigint, mod: bigint, maxExpBits: number, windowBits: number): FixedBasePow {
  const windows = Math.ceil(maxExpBits / windowBits);
  const digits = 1 << windowBits;
  const table: bigint[][] = [];
  let b = ((base % mod) + mod) % mod;
  for (let i = 0; i < windows; i++) {
    const row: bigint[] = new Array<bigint>(digits);
    row[0] = 1n;
    row[1] = b;
    for (let d = 2; d < digits; d++) row[d] = (row[d - 1]! * b) % mod;
    table.push(row);
    b = (row[digits - 1]! * b) % mod;
  }
  const mask = BigInt(digits - 1);
  const shift = BigInt(windowBits);
  const pow = (exp: bigint): bigint => {
    if (exp < 0n || bitLength(exp) > maxExpBits) throw new RangeError(`fixedBase: exponent must be in [0, 2^${maxExpBits})`);
    let acc = 1n;
    let first = true;
    for (let i = 0; exp > 0n; i++, exp >>= shift) {
      const d = Number(exp & mask);
      if (d === 0) continue;
      const t = table[i]![d]!;
      acc = first ? t : (acc * t) % mod;
      first = false;
    }
    return acc;
  };
  return { maxExpBits, pow, powMany: (exps) => exps.map(pow) };
}
