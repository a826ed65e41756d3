import { mkdtemp, chmod, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCipherMLError } from '../core/errors.ts';
import {
  chooseCkksParameters,
  CkksContext,
  deserializeCiphertexts,
  deserializePublicContext,
  deserializeSecretKey,
  encryptToBytes,
  loadSeal,
  readPublicContextFile,
  readSecretKeyFile,
  serializeCiphertexts,
  serializePublicContext,
  serializeSecretKey,
  sumSlotsSteps,
  bestBabyStep,
  diagonalSteps,
  validateCkksParameters,
  writeKeyFiles,
} from './index.ts';
import type { CkksParameters } from './index.ts';

// N = 8192, chain 60 | 40 | 40 | 60: two levels, 4096 slots, 200 of the 218 bits 128-bit security allows.
const PARAMS: CkksParameters = { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 60], scaleBits: 40 };
/** Absolute tolerance for |inputs| ≤ 10 after at most two levels at Δ = 2^40. */
const TOL = 1e-4;

let ctx: CkksContext;
beforeAll(async () => {
  ctx = await CkksContext.create(PARAMS, { galoisSteps: [...sumSlotsSteps(8), -1, 3] });
});
afterAll(() => ctx.delete());

const vec = (n = 16) => fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: 1, maxLength: n });

function expectClose(actual: ArrayLike<number>, expected: readonly number[], tol = TOL): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThan(tol);
}

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isCipherMLError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return undefined;
}

describe('parameters', () => {
  it('enforces the 128-bit bound of SEAL CoeffModulus.MaxBitCount', async () => {
    const seal = await loadSeal();
    expect(seal.CoeffModulus.MaxBitCount(8192, seal.SecLevelType.tc128)).toBe(218);
    expect(code(() => validateCkksParameters(seal, { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 40, 60], scaleBits: 40 }))).toBe('CIPHERML_E_CKKS_PARAMETERS_INSECURE');
    expect(code(() => validateCkksParameters(seal, { polyModulusDegree: 8000, coeffModulusBits: [60, 60], scaleBits: 40 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(code(() => validateCkksParameters(seal, { polyModulusDegree: 8192, coeffModulusBits: [60, 30, 60], scaleBits: 40 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
  it('chooses the smallest secure ring degree for a depth', async () => {
    const seal = await loadSeal();
    expect(chooseCkksParameters(seal, { depth: 2 })).toEqual({ polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 60], scaleBits: 40 });
    expect(chooseCkksParameters(seal, { depth: 5 }).polyModulusDegree).toBe(16384);
    expect(chooseCkksParameters(seal, { depth: 2, minSlots: 8192 }).polyModulusDegree).toBe(16384);
    expect(code(() => chooseCkksParameters(seal, { depth: 30 }))).toBe('CIPHERML_E_CKKS_PARAMETERS_INSECURE');
  });
});

describe('arithmetic (known answers)', () => {
  it('encrypt/decrypt, add, sub, mul, square, scalars and plaintexts', () => {
    using x = ctx.encryptVector([1, -2, 3.5]);
    using y = ctx.encryptVector([0.5, 4, -1]);
    expectClose(ctx.decryptVector(x), [1, -2, 3.5]);
    using s = ctx.add(x, y);
    expectClose(ctx.decryptVector(s), [1.5, 2, 2.5]);
    using d = ctx.sub(x, y);
    expectClose(ctx.decryptVector(d), [0.5, -6, 4.5]);
    using p = ctx.mul(x, y);
    expectClose(ctx.decryptVector(p), [0.5, -8, -3.5]);
    expect(p.level).toBe(x.level - 1);
    using q = ctx.square(x);
    expectClose(ctx.decryptVector(q), [1, 4, 12.25]);
    using k = ctx.mulScalar(x, -0.25);
    expectClose(ctx.decryptVector(k), [-0.25, 0.5, -0.875]);
    expect(k.scale).toBe(x.scale);
    using m = ctx.mulPlain(x, [2, 3, 4]);
    expectClose(ctx.decryptVector(m), [2, -6, 14]);
    using a = ctx.addScalar(x, 10);
    expectClose(ctx.decryptVector(a), [11, 8, 13.5]);
    using ap = ctx.addPlain(x, [1, 1, 1]);
    expectClose(ctx.decryptVector(ap), [2, -1, 4.5]);
    using n = ctx.negate(x);
    expectClose(ctx.decryptVector(n), [-1, 2, -3.5]);
  });

  it('combines operands at different levels and scales (x² + x, x²·(x/2))', () => {
    using x = ctx.encryptVector([1, 2, 3]);
    using x2 = ctx.square(x);
    using sum = ctx.add(x2, x);
    expectClose(ctx.decryptVector(sum), [2, 6, 12]);
    using half = ctx.mulScalar(x, 0.5);
    using cube = ctx.mul(x2, half);
    expectClose(ctx.decryptVector(cube), [0.5, 4, 13.5]);
    expect(cube.level).toBe(0);
    expect(code(() => ctx.mul(cube, cube))).toBe('CIPHERML_E_CKKS_DEPTH_EXHAUSTED');
  });

  it('linearCombination: Σ k_i x_i + b with one rescale', () => {
    using a = ctx.encryptVector([1, 2]);
    using b = ctx.encryptVector([3, -1]);
    using y = ctx.linearCombination([a, b, a], [0.5, -2, 0], 0.25);
    expectClose(ctx.decryptVector(y), [0.5 - 6 + 0.25, 1 + 2 + 0.25]);
    expect(y.level).toBe(a.level - 1);
    using z = ctx.linearCombination([a], [0], 1.5);
    expectClose(ctx.decryptVector(z), [1.5, 1.5]);
    using zero = ctx.mulScalar(a, 0);
    expectClose(ctx.decryptVector(zero), [0, 0]);
    expect(zero.level).toBe(a.level - 1);
  });

  it('rotate and sumSlots with only the Galois steps generated', () => {
    using x = ctx.encryptVector([1, 2, 3, 4, 5, 6, 7, 8]);
    using r = ctx.rotate(x, 3);
    expectClose(ctx.decryptVector(r, 5), [4, 5, 6, 7, 8]);
    using l = ctx.rotate(x, -1);
    expectClose(ctx.decryptVector(l, 3), [0, 1, 2]);
    using s = ctx.sumSlots(x, 8);
    expectClose(ctx.decryptVector(s, 1), [36], 1e-3);
    using five = ctx.rotate(x, 5); // no key for 5: SEAL chains 4 + 1
    expectClose(ctx.decryptVector(five, 3), [6, 7, 8], 1e-3);
    expect(code(() => ctx.rotate(x, 64).delete())).toBe('CIPHERML_E_CKKS_GALOIS_KEY_MISSING');
    expect(ctx.galoisSteps).toEqual([-1, 1, 2, 3, 4]);
  });

  it('rejects bad inputs with typed errors', () => {
    expect(code(() => ctx.encryptVector([1, Number.NaN]))).toBe('CIPHERML_E_NOT_FINITE');
    expect(code(() => ctx.encryptVector(new Float64Array(ctx.slotCount + 1)))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    expect(code(() => ctx.encryptVector([2 ** 30]))).toBe('CIPHERML_E_OUT_OF_RANGE');
    const v = ctx.encryptVector([1]);
    v.delete();
    expect(code(() => ctx.decryptVector(v))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});

describe('arithmetic (properties)', () => {
  it('Dec(Enc(a) + Enc(b)) ≈ a + b and Dec(Enc(a) − Enc(b)) ≈ a − b', () => {
    fc.assert(
      fc.property(vec(), vec(), (a, b) => {
        using x = ctx.encryptVector(a);
        using y = ctx.encryptVector(b);
        using s = ctx.add(x, y);
        using d = ctx.sub(x, y);
        const n = Math.max(a.length, b.length);
        expectClose(ctx.decryptVector(s), Array.from({ length: n }, (_, i) => (a[i] ?? 0) + (b[i] ?? 0)));
        expectClose(ctx.decryptVector(d), Array.from({ length: n }, (_, i) => (a[i] ?? 0) - (b[i] ?? 0)));
      }),
      { numRuns: 15 },
    );
  });
  it('Dec(Enc(a) · Enc(b)) ≈ a ⊙ b and Dec(Enc(a) · k) ≈ k·a', () => {
    fc.assert(
      fc.property(vec(), vec(), fc.double({ min: -4, max: 4, noNaN: true }), (a, b, k) => {
        using x = ctx.encryptVector(a);
        using y = ctx.encryptVector(b);
        using p = ctx.mul(x, y);
        using q = ctx.mulScalar(x, k);
        const n = Math.max(a.length, b.length);
        expectClose(ctx.decryptVector(p), Array.from({ length: n }, (_, i) => (a[i] ?? 0) * (b[i] ?? 0)));
        expectClose(ctx.decryptVector(q), a.map((v) => v * k));
      }),
      { numRuns: 15 },
    );
  });
  it('rotate by 1 shifts left by one slot', () => {
    fc.assert(
      fc.property(vec(32), (a) => {
        using x = ctx.encryptVector(a);
        using r = ctx.rotate(x, 1);
        expectClose(ctx.decryptVector(r, a.length), [...a.slice(1), 0], 1e-3);
      }),
      { numRuns: 10 },
    );
  });
});

describe('serialization', () => {
  it('public context evaluates, secret key decrypts, fingerprints bind ciphertexts to the key set', async () => {
    const pubBytes = serializePublicContext(ctx);
    const server = await deserializePublicContext(pubBytes);
    const client = await deserializeSecretKey(serializeSecretKey(ctx));
    try {
      expect(server.fingerprint).toBe(ctx.fingerprint);
      expect(client.fingerprint).toBe(ctx.fingerprint);
      expect(server.hasSecretKey).toBe(false);
      const input = encryptToBytes(client, [[1, 2, 3], [4, 5]], { shape: [2, 3] });
      const { vectors, meta } = deserializeCiphertexts(server, input);
      expect(meta).toEqual({ shape: [2, 3] });
      const [a, b] = vectors as [typeof vectors[0], typeof vectors[0]];
      using p = server.mul(a, b);
      using r = server.rotate(a, 1);
      const out = serializeCiphertexts(server, [p, r]);
      for (const v of vectors) v.delete();
      expect(code(() => server.decryptVector(p))).toBe('CIPHERML_E_CKKS_SECRET_KEY_MISSING');
      const back = deserializeCiphertexts(client, out);
      expectClose(client.decryptVector(back.vectors[0]!), [4, 10, 0]);
      expectClose(client.decryptVector(back.vectors[1]!), [2, 3, 0], 1e-3);
      for (const v of back.vectors) v.delete();
      // Seeded symmetric ciphertexts are about half the size of expanded ones.
      using fresh = client.encryptVector([1, 2, 3]);
      expect(encryptToBytes(client, [[1, 2, 3]]).length).toBeLessThan(0.6 * serializeCiphertexts(client, [fresh]).length);
    } finally {
      server.delete();
      client.delete();
    }
  });

  it('refuses another key set, truncation and tampering with typed errors', async () => {
    const other = await CkksContext.create(PARAMS);
    try {
      const bytes = encryptToBytes(ctx, [[1, 2]]);
      expect(code(() => deserializeCiphertexts(other, bytes))).toBe('CIPHERML_E_KEY_MISMATCH');
      expect(code(() => deserializeCiphertexts(ctx, bytes.subarray(0, bytes.length - 10)))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
      const tampered = Uint8Array.from(bytes);
      tampered[100] = tampered[100]! ^ 1;
      expect(code(() => deserializeCiphertexts(ctx, tampered))).toBe('CIPHERML_E_FORMAT_CORRUPT');
      await expect(deserializePublicContext(bytes)).rejects.toMatchObject({ code: 'CIPHERML_E_FORMAT_UNSUPPORTED' });
      using v = other.encryptVector([1]);
      expect(code(() => ctx.add(v, v))).toBe('CIPHERML_E_KEY_MISMATCH');
    } finally {
      other.delete();
    }
  });

  it('writes key (0600) and key.pub, refuses a readable secret key file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-ckks-'));
    const { secretKeyPath, publicKeyPath } = await writeKeyFiles(join(dir, 'key'), ctx);
    expect((await stat(secretKeyPath)).mode & 0o777).toBe(0o600);
    const pub = await readPublicContextFile(publicKeyPath);
    const sec = await readSecretKeyFile(secretKeyPath);
    expect(pub.fingerprint).toBe(sec.fingerprint);
    pub.delete();
    sec.delete();
    await expect(writeKeyFiles(join(dir, 'key'), ctx)).rejects.toMatchObject({ code: 'CIPHERML_E_FILE_EXISTS' });
    await chmod(secretKeyPath, 0o644);
    await expect(readSecretKeyFile(secretKeyPath)).rejects.toMatchObject({ code: 'CIPHERML_E_KEY_FILE_INSECURE' });
  });
});

describe('diagonal matrix × vector (baby-step/giant-step)', () => {
  // A 16 × 16 matrix on a vector of period 16, diagonals at rotations -3 … 12.
  const P = 16;
  const rotations = Array.from({ length: P }, (_, i) => i - 3);
  let mctx: CkksContext;
  beforeAll(async () => {
    const steps = [...new Set([...diagonalSteps(rotations, 4), ...diagonalSteps(rotations, 5), ...sumSlotsSteps(4, 16)])];
    mctx = await CkksContext.create(PARAMS, { galoisSteps: steps });
  });
  afterAll(() => mctx.delete());
  const periodic = (f: (j: number) => number): Float64Array => Float64Array.from({ length: mctx.slotCount }, (_, j) => f(j % P));

  it('equals the plaintext product W·x for any matrix and baby step (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: P * P, maxLength: P * P }), fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: P, maxLength: P }), fc.constantFrom(4, 5), (w, x, baby) => {
        // Row i of W on diagonal r: diag_r[i] = W[i][(i + r) mod P].
        const diagonals = rotations.map((r) => ({ rotation: r, values: periodic((i) => w[i * P + (((i + r) % P) + P) % P]!) }));
        using m = mctx.prepareDiagonals(diagonals, mctx.maxLevel, baby);
        using xv = mctx.encryptVector(periodic((i) => x[i]!));
        using y = mctx.mulDiagonals(xv, m);
        const want = Array.from({ length: P }, (_, i) => x.reduce((s, xj, j) => s + w[i * P + j]! * xj, 0));
        expect(y.level).toBe(mctx.maxLevel - 1);
        expectClose(mctx.decryptVector(y, P), want, 1e-3);
      }),
      { numRuns: 6 },
    );
  });

  it('skips all-zero diagonals and refuses a missing Galois key by name', () => {
    using xv = mctx.encryptVector(periodic((i) => i));
    using m = mctx.prepareDiagonals([{ rotation: 0, values: periodic(() => 0) }, { rotation: 1, values: periodic(() => 2) }], mctx.maxLevel);
    expect(m.size).toBe(1);
    using y = mctx.mulDiagonals(xv, m);
    expectClose(mctx.decryptVector(y, 4), [2, 4, 6, 8]);
    // 7 has no key of its own but chains over 1, 2, 4 (keys present); 64 has neither key nor chain.
    using bad = mctx.prepareDiagonals([{ rotation: 64, values: periodic(() => 1) }], mctx.maxLevel, 1);
    expect(code(() => mctx.mulDiagonals(xv, bad))).toBe('CIPHERML_E_CKKS_GALOIS_KEY_MISSING');
    expect(code(() => mctx.prepareDiagonals([{ rotation: 0, values: new Float64Array(3) }], mctx.maxLevel))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    expect(code(() => mctx.prepareDiagonals([{ rotation: 1, values: periodic(() => 1) }, { rotation: 1, values: periodic(() => 1) }], mctx.maxLevel))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(code(() => ctx.mulDiagonals(ctx.encryptVector([1]), m))).toBe('CIPHERML_E_KEY_MISMATCH');
  });

  it('sums products whose scales drifted apart once their diagonals carry the scale factor', () => {
    // x² has scale Δ²/q, x has Δ; with the factors Δ/scale both products come out at Δ.
    using xv = mctx.encryptVector(periodic((i) => i / 8));
    using sq = mctx.mul(xv, xv);
    const l = sq.level;
    const ones = periodic(() => 1);
    using mSq = mctx.prepareDiagonals([{ rotation: 0, values: ones }], l, undefined, mctx.freshScale / sq.scale);
    using mX = mctx.prepareDiagonals([{ rotation: 0, values: ones }], l, undefined, mctx.freshScale / xv.scale);
    using a = mctx.mulDiagonals(sq, mSq);
    using b = mctx.mulDiagonals(xv, mX);
    expect(a.scale / b.scale).toBeCloseTo(1, 12);
    using sum = mctx.add(a, b);
    expectClose(mctx.decryptVector(sum, 4), [0, 1 / 8 + 1 / 64, 2 / 8 + 4 / 64, 3 / 8 + 9 / 64]);
    expect(mctx.primeAt(l + 1)).toBeGreaterThan(2 ** 20);
    expect(Math.abs(sq.scale - (xv.scale * xv.scale) / mctx.primeAt(l + 1))).toBeLessThan(1e-6 * sq.scale);
    expect(code(() => mctx.prepareDiagonals([{ rotation: 0, values: ones }], l, undefined, 0))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });

  it('sumSlots with a stride adds every stride-th slot', () => {
    using xv = mctx.encryptVector(Float64Array.from({ length: 64 }, (_, j) => j));
    using s = mctx.sumSlots(xv, 4, 16);
    expectClose(mctx.decryptVector(s, 2), [0 + 16 + 32 + 48, 1 + 17 + 33 + 49]);
  });

  it('bestBabyStep minimizes the rotation count (known answers)', () => {
    expect(diagonalSteps([0, 1, 2, 3], 2)).toEqual([1, 2]);
    const spread = [0, 1, 2, 3, 28, 29, 30, 31];
    expect(diagonalSteps(spread, 28)).toEqual([1, 2, 3, 28]);
    expect(diagonalSteps(spread, 1)).toHaveLength(7);
    expect(diagonalSteps(spread, bestBabyStep(spread))).toHaveLength(4);
    expect(diagonalSteps([-1, 0, 1], 3)).toEqual([-3, 1, 2]);
  });
});
