/**
 * cipherml/ckks — approximate homomorphic encryption of real vectors (CKKS, Cheon–Kim–Kim–Song,
 * ASIACRYPT 2017) on Microsoft SEAL 4.1 through node-seal 7. The wasm is loaded on first use, so
 * importing other cipherml areas never loads it.
 *
 * A {@link CkksContext} owns parameters, keys and SEAL's encoder/evaluator. Vectors of up to
 * `slotCount` (= N/2) reals are encrypted into {@link CkksVector}s; every operation returns a new
 * vector and leaves its inputs alone; every vector and context must be freed with `.delete()`
 * (or `using`). Levels and scales are managed for the caller: products are relinearized and
 * rescaled, plaintext and scalar factors are encoded at the prime the rescale drops (the scale
 * stays exactly Δ), and operands at different levels are mod-switched to the lower one.
 *
 * | operation | levels used | keys needed |
 * |---|---|---|
 * | `add`, `sub`, `negate`, `addPlain`, `addScalar`, `addInPlace` | 0 | — |
 * | `mul`, `square` | 1 | relinearization |
 * | `mulPlain`, `mulScalar`, `linearCombination` | 1 | — |
 * | `mul(a, b, { finish: false })` then `sumProducts(ps)` | 1 for the pair | relinearization (once per sum) |
 * | `rotate(v, k)` | 0 | Galois key for k |
 * | `sumSlots(v, n, stride)` | 0 | Galois keys `sumSlotsSteps(n, stride)` |
 * | `mulDiagonals(v, m)` (matrix × vector, BSGS) | 1 | Galois keys `diagonalSteps(…)` |
 *
 * Error model: decrypted values equal the exact result up to CKKS noise, about
 * 2^-(scaleBits-20) relative per level for scaleBits = 40 (tests use 1e-4 absolute on |x| ≤ 10).
 *
 * Who holds what: the data owner creates the context (`CkksContext.create`), keeps the secret key
 * (`writeKeyFiles` writes `key` 0600 and `key.pub`) and sends `key.pub`
 * (`serializePublicContext`: parameters, public, relinearization and Galois keys, seeded and
 * zstd-compressed) to the evaluator, which loads it with `deserializePublicContext` and can
 * compute but not decrypt. Ciphertexts travel as `serializeCiphertexts` / `encryptToBytes`
 * bytes with caller metadata; each file carries the key-set fingerprint and is refused under
 * another key set (CIPHERML_E_KEY_MISMATCH).
 *
 * A trainer for encrypted logistic regression (many samples per ciphertext, weights encrypted,
 * degree-3 sigmoid) builds on: `encryptVector` (features column-packed), `mulPlain`/`mul` for
 * w·x, `linearCombination` for polynomial evaluation, `sumSlots` for the gradient sum over
 * samples, and `maxLevel`/`level` to plan when to refresh (decrypt and re-encrypt) the weights.
 *
 * @example
 * ```ts
 * import { CkksContext, chooseCkksParameters, loadSeal, sumSlotsSteps } from 'cipherml/ckks';
 * const params = chooseCkksParameters(await loadSeal(), { depth: 2 });
 * const ctx = await CkksContext.create(params, { galoisSteps: sumSlotsSteps(4) });
 * using x = ctx.encryptVector([1, 2, 3, 4]);
 * using y = ctx.mul(x, x);              // [1, 4, 9, 16], one level used
 * using s = ctx.sumSlots(y, 4);         // slot 0 ≈ 30
 * console.log(ctx.decryptVector(s, 1)); // Float64Array [≈30]
 * ctx.delete();
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { CkksContext, CkksDiagonalMatrix, CkksVector, bestBabyStep, diagonalSteps, SCALE_TOLERANCE, sumSlotsSteps } from './context.ts';
export type { CreateContextOptions, GaloisGroup } from './context.ts';
export { chainSteps, rotationSchedule, rotationSwitches, splitRotations } from './bsgs.ts';
export type { RotationSchedule } from './bsgs.ts';
export { binarySteps, binaryTerms, estimateKeySet, galoisGroupSize, keySwitchingKeyBytes, naf, powerOfTwoSteps } from './keys.ts';
export type { KeySetEstimate } from './keys.ts';
export type { CiphertextFile, CiphertextRecord } from './serialize.ts';
export { chooseCkksParameters, levelsOf, validateCkksParameters } from './params.ts';
export type { ChooseParametersOptions, CkksParameters } from './params.ts';
export { loadSeal, sealHeapBytes } from './seal.ts';
export type { Seal } from './seal.ts';
export {
  assembleCiphertexts,
  checkCiphertextFile,
  deserializeCiphertexts,
  encryptRecord,
  loadCiphertext,
  readCiphertextRecords,
  saveCiphertext,
  deserializePublicContext,
  deserializeSecretKey,
  encryptToBytes,
  readPublicContextFile,
  readSecretKeyFile,
  serializeCiphertexts,
  serializePublicContext,
  serializeSecretKey,
  splitCiphertextFile,
  writeKeyFiles,
} from './serialize.ts';
