import { CipherMLError } from './errors.ts';

/**
 * Guards for the public boundary. Each names the parameter it rejects, so that the message a
 * user reads points at their own argument.
 */

/**
 * Requires an integer in [min, max].
 *
 * @example
 * ```ts
 * assertIntegerInRange(bits, 'keyBits', 1024, 8192);
 * ```
 */
export function assertIntegerInRange(value: unknown, param: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an integer in [${min}, ${max}], got ${describe(value)}`, {
      param,
      details: { min, max, actual: describe(value) },
    });
  }
}

/**
 * Requires one of a fixed set of values.
 *
 * @example
 * ```ts
 * assertOneOf(mode, 'obfuscation', ['djn', 'classic'] as const);
 * ```
 */
export function assertOneOf<T extends string | number>(value: unknown, param: string, allowed: readonly T[]): asserts value is T {
  if (!allowed.includes(value as T)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${describe(value)}`, {
      param,
      details: { allowed, actual: describe(value) },
    });
  }
}

/**
 * Requires a bigint (not a number that merely looks integral).
 *
 * @example
 * ```ts
 * assertBigInt(m, 'plaintext');
 * ```
 */
export function assertBigInt(value: unknown, param: string): asserts value is bigint {
  if (typeof value !== 'bigint') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected a bigint, got ${describe(value)}`, { param });
  }
}

/**
 * Requires an array-like of finite numbers; reports the first offending index.
 *
 * @example
 * ```ts
 * assertFiniteVector(values, 'values');
 * ```
 */
export function assertFiniteVector(value: unknown, param: string): asserts value is ArrayLike<number> {
  if (!isNumberArrayLike(value)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected an array or Float64Array of numbers, got ${describe(value)}`, { param });
  }
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (typeof v !== 'number') {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `element ${i} is ${describe(v)}, not a number`, { param, details: { index: i } });
    }
    if (!Number.isFinite(v)) {
      throw new CipherMLError('CIPHERML_E_NOT_FINITE', `element ${i} is ${String(v)}`, { param, details: { index: i, value: String(v) } });
    }
  }
}

function isNumberArrayLike(value: unknown): value is ArrayLike<unknown> {
  return Array.isArray(value) || value instanceof Float64Array || value instanceof Float32Array;
}

/** A short, safe description of a value for error messages (never dumps large data). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `${value.toString().slice(0, 40)}n`;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return `array(${value.length})`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength} bytes)`;
  return typeof value;
}
