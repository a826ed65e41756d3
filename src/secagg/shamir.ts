import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange, describe } from '../core/guards.ts';
import { bigintToBytes, bytesToBigint } from '../core/bigmath/bigint.ts';
import { FIELD_BYTES, FIELD_PRIME, fieldAdd, fieldInv, fieldMul, fieldSub, randomFieldElement } from './field.ts';

/**
 * Shamir t-out-of-n secret sharing over GF(2^521 − 1) (A. Shamir, "How to share a secret",
 * CACM 22(11), 1979). A random polynomial f of degree `degree` with f(0) = secret is evaluated at
 * distinct non-zero points; any degree + 1 evaluations determine f (and so f(0)) by Lagrange
 * interpolation, while any `degree` of them are jointly uniform and independent of the secret.
 * Bonawitz et al. (CCS 2017, §4, "ShareKeys") use it for the DH secret key s^SK_u and the
 * self-mask seed b_u, both 32 bytes.
 *
 * Secret encoding: a byte string s of 1..64 bytes becomes the field element
 * bytesToBigint([len, ...s]), big-endian with a one-byte length prefix, so leading zero bytes of
 * s survive. Since len ≤ 64 = 0x40, the value is < 0x41·2^512 < 2^519 < P: the encoding is
 * injective into the field and never wraps.
 */

/**
 * Largest secret, in bytes (the length prefix keeps the encoding below 2^520 < P).
 *
 * @example
 * ```ts
 * splitSecret(new Uint8Array(MAX_SECRET_BYTES), [1, 2], 1); // ok; one byte more is rejected
 * ```
 */
export const MAX_SECRET_BYTES = 64;

/**
 * Largest evaluation point x (shares carry x as a 4-byte unsigned integer ≤ 2^31 − 1).
 *
 * @example
 * ```ts
 * splitSecret(seed32, [1, MAX_SHARE_X], 1); // the extreme points are allowed
 * ```
 */
export const MAX_SHARE_X = 0x7fffffff;

/**
 * Serialized size of a share: 4-byte big-endian x ‖ 66-byte big-endian y = 70 bytes.
 *
 * @example
 * ```ts
 * shareToBytes(share).length === SHARE_BYTES; // true
 * ```
 */
export const SHARE_BYTES: number = 4 + FIELD_BYTES;

/**
 * One share: the point (x, f(x)) of the sharing polynomial. Invariants: x is an integer in
 * [1, 2^31 − 1] (x = 0 would be the secret itself), y is in [0, P); within one sharing all x are
 * distinct.
 *
 * @example
 * ```ts
 * const share: Share = { x: 3, y: 12345n };
 * ```
 */
export interface Share {
  readonly x: number;
  readonly y: bigint;
}

/**
 * Splits `secret` (1..64 bytes) into one share per evaluation point in `xs`, using a uniformly
 * random polynomial of degree `degree` (coefficients 1..degree from the CSPRNG). Any degree + 1
 * shares reconstruct the secret; `degree` or fewer reveal nothing about it.
 *
 * Throws CIPHERML_E_INVALID_ARGUMENT naming `secret`, `degree`, `xs` or `xs[i]` when the secret
 * is empty or longer than 64 bytes, degree < 1, fewer than degree + 1 points are given, or a
 * point is not a distinct integer in [1, 2^31 − 1].
 *
 * @example
 * ```ts
 * const shares = splitSecret(seed32, [1, 2, 3, 4, 5], 2); // 3-out-of-5
 * reconstructSecret([shares[4]!, shares[0]!, shares[2]!], 2); // equals seed32
 * ```
 */
export function splitSecret(secret: Uint8Array, xs: readonly number[], degree: number): Share[] {
  if (!(secret instanceof Uint8Array) || secret.length < 1 || secret.length > MAX_SECRET_BYTES) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a Uint8Array of 1..${MAX_SECRET_BYTES} bytes, got ${describe(secret)}`, { param: 'secret' });
  }
  assertIntegerInRange(degree, 'degree', 1, MAX_SHARE_X - 1);
  if (!Array.isArray(xs)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an array of evaluation points, got ${describe(xs)}`, { param: 'xs' });
  }
  if (xs.length < degree + 1) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `need ≥ degree+1 = ${degree + 1} evaluation points to make the secret recoverable, got ${xs.length}`, {
      param: 'xs',
      details: { degree, points: xs.length },
    });
  }
  assertDistinctPoints(xs, (i) => `xs[${i}]`);

  // f(X) = c0 + c1·X + … + c_d·X^d with c0 = encoded secret and c1..c_d uniform in GF(P).
  const coeffs: bigint[] = [encodeSecret(secret)];
  for (let k = 1; k <= degree; k++) coeffs.push(randomFieldElement());

  return xs.map((x) => {
    // Horner: y = (…(c_d·x + c_{d−1})·x + …)·x + c0.
    const bx = BigInt(x);
    let y = 0n;
    for (let k = degree; k >= 0; k--) y = fieldAdd(fieldMul(y, bx), coeffs[k]!);
    return { x, y };
  });
}

/**
 * Recovers the secret from the first degree + 1 shares by Lagrange interpolation at 0:
 * f(0) = Σ_i y_i · Π_{j≠i} x_j / (x_j − x_i). Extra shares beyond degree + 1 are validated but
 * not used (so a corrupt extra share is NOT detected — this is plain Shamir, not verifiable
 * secret sharing).
 *
 * Throws CIPHERML_E_INVALID_ARGUMENT when fewer than degree + 1 shares are given, a share is
 * malformed, or two shares have the same x; CIPHERML_E_FORMAT_CORRUPT when the interpolated
 * value is not a valid length-prefixed secret (a tampered share or the wrong degree will usually,
 * but not always, end up here; otherwise the result is simply a wrong secret).
 *
 * @example
 * ```ts
 * const shares = splitSecret(new Uint8Array([0, 7, 42]), [10, 20, 30], 1);
 * reconstructSecret(shares.slice(1), 1); // Uint8Array [0, 7, 42]
 * ```
 */
export function reconstructSecret(shares: readonly Share[], degree: number): Uint8Array {
  assertIntegerInRange(degree, 'degree', 1, MAX_SHARE_X - 1);
  if (!Array.isArray(shares)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an array of shares, got ${describe(shares)}`, { param: 'shares' });
  }
  if (shares.length < degree + 1) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `need ≥ degree+1 = ${degree + 1} shares to reconstruct, got ${shares.length}`, {
      param: 'shares',
      details: { degree, shares: shares.length },
    });
  }
  shares.forEach((s, i) => assertShare(s, `shares[${i}]`));
  assertDistinctPoints(
    shares.map((s) => s.x),
    (i) => `shares[${i}].x`,
  );

  const used = shares.slice(0, degree + 1);
  const lambda = lagrangeAtZero(used.map((s) => s.x));
  let acc = 0n;
  for (let i = 0; i < used.length; i++) acc = fieldAdd(acc, fieldMul(used[i]!.y, lambda[i]!));
  return decodeSecret(acc);
}

/**
 * Lagrange coefficients at 0 for the points xs: λ_i = Π_{j≠i} x_j / (x_j − x_i) mod P, so that
 * f(0) = Σ λ_i·f(x_i) for any f of degree < |xs|. A round reconstructs many secrets from the
 * same holders, so the coefficients of recent point sets are kept (O(t²) once, then O(t) per
 * secret).
 */
const LAGRANGE_CACHE = new Map<string, readonly bigint[]>();
const LAGRANGE_CACHE_SIZE = 16;

function lagrangeAtZero(xs: readonly number[]): readonly bigint[] {
  const key = xs.join(',');
  const hit = LAGRANGE_CACHE.get(key);
  if (hit !== undefined) return hit;
  // λ_i = n_i / d_i with one field inversion for all i (Montgomery's batch inversion):
  // with D = Π d_i and prefix/suffix products, 1/d_i = (Π_{j<i} d_j)(Π_{j>i} d_j) / D.
  const nums: bigint[] = [];
  const dens: bigint[] = [];
  for (let i = 0; i < xs.length; i++) {
    const xi = BigInt(xs[i]!);
    let n = 1n;
    let d = 1n;
    for (let j = 0; j < xs.length; j++) {
      if (j === i) continue;
      const xj = BigInt(xs[j]!);
      n = fieldMul(n, xj);
      d = fieldMul(d, fieldSub(xj, xi));
    }
    nums.push(n);
    dens.push(d);
  }
  const prefix: bigint[] = [1n];
  for (const d of dens) prefix.push(fieldMul(prefix.at(-1)!, d));
  const inverseAll = fieldInv(prefix.at(-1)!);
  const out: bigint[] = new Array<bigint>(xs.length);
  let suffix = 1n;
  for (let i = xs.length - 1; i >= 0; i--) {
    out[i] = fieldMul(nums[i]!, fieldMul(fieldMul(prefix[i]!, suffix), inverseAll));
    suffix = fieldMul(suffix, dens[i]!);
  }
  if (LAGRANGE_CACHE.size >= LAGRANGE_CACHE_SIZE) LAGRANGE_CACHE.delete(LAGRANGE_CACHE.keys().next().value!);
  LAGRANGE_CACHE.set(key, out);
  return out;
}

/**
 * Serializes a share as 70 bytes: x as 4-byte big-endian unsigned ‖ y as 66-byte big-endian.
 * Throws CIPHERML_E_INVALID_ARGUMENT (param `share`) for a malformed share.
 *
 * @example
 * ```ts
 * shareToBytes({ x: 1, y: 2n }).length; // 70
 * ```
 */
export function shareToBytes(s: Share): Uint8Array {
  assertShare(s, 'share');
  const out = new Uint8Array(SHARE_BYTES);
  new DataView(out.buffer).setUint32(0, s.x, false);
  out.set(bigintToBytes(s.y, FIELD_BYTES), 4);
  return out;
}

/**
 * Parses the 70-byte form written by {@link shareToBytes}. Throws CIPHERML_E_INVALID_ARGUMENT if
 * `b` is not a Uint8Array and CIPHERML_E_FORMAT_CORRUPT for a wrong length, x outside
 * [1, 2^31 − 1] or y ≥ P.
 *
 * @example
 * ```ts
 * shareFromBytes(shareToBytes({ x: 5, y: 99n })); // { x: 5, y: 99n }
 * ```
 */
export function shareFromBytes(b: Uint8Array): Share {
  if (!(b instanceof Uint8Array)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a Uint8Array, got ${describe(b)}`, { param: 'bytes' });
  }
  if (b.length !== SHARE_BYTES) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `a serialized share is ${SHARE_BYTES} bytes, got ${b.length}`, {
      param: 'bytes',
      details: { expected: SHARE_BYTES, actual: b.length },
    });
  }
  const x = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, false);
  if (x < 1 || x > MAX_SHARE_X) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `share x = ${x} is outside [1, 2^31 − 1]`, { param: 'bytes', details: { x } });
  }
  const y = bytesToBigint(b.subarray(4));
  if (y >= FIELD_PRIME) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'share y is not a field element (y ≥ 2^521 − 1)', { param: 'bytes' });
  }
  return { x, y };
}

/** bytes (1..64) ↦ bytesToBigint([len, ...bytes]) < 2^519. */
function encodeSecret(secret: Uint8Array): bigint {
  const prefixed = new Uint8Array(secret.length + 1);
  prefixed[0] = secret.length;
  prefixed.set(secret, 1);
  return bytesToBigint(prefixed);
}

/** Inverse of encodeSecret: the minimal big-endian form must be exactly [len, ...len bytes]. */
function decodeSecret(v: bigint): Uint8Array {
  const bytes = bigintToBytes(v);
  const len = bytes[0]!;
  if (len < 1 || len > MAX_SECRET_BYTES || bytes.length !== len + 1) {
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'the reconstructed value is not a length-prefixed secret: a share is corrupt, from another sharing, or the degree is wrong', {
      param: 'shares',
    });
  }
  return bytes.slice(1);
}

function assertShare(s: unknown, param: string): asserts s is Share {
  if (typeof s !== 'object' || s === null) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a share { x, y }, got ${describe(s)}`, { param });
  }
  const { x, y } = s as { x?: unknown; y?: unknown };
  assertIntegerInRange(x, `${param}.x`, 1, MAX_SHARE_X);
  if (typeof y !== 'bigint' || y < 0n || y >= FIELD_PRIME) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a bigint in [0, 2^521 − 1), got ${describe(y)}`, { param: `${param}.y` });
  }
}

function assertDistinctPoints(xs: readonly unknown[], paramOf: (i: number) => string): void {
  const seen = new Map<number, number>();
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    assertIntegerInRange(x, paramOf(i), 1, MAX_SHARE_X);
    const first = seen.get(x);
    if (first !== undefined) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `evaluation point ${x} repeats index ${first}; points must be distinct`, {
        param: paramOf(i),
        details: { x, first, duplicate: i },
      });
    }
    seen.set(x, i);
  }
}
