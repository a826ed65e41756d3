/**
 * cipherml/paillier — the Paillier cryptosystem with g = n + 1, DJN short-exponent obfuscation
 * from a fixed-base table, CRT decryption, BatchCrypt-style packing with overflow refusal,
 * worker-thread vector encryption, and versioned serialization.
 *
 * @example
 * ```ts
 * import { generatePaillierKeyPair, encryptVector, decryptVector, PackedCiphertext } from 'cipherml/paillier';
 * const { publicKey, privateKey } = await generatePaillierKeyPair();
 * const a = await encryptVector(publicKey, [0.5, -1, 2]);
 * const b = await encryptVector(publicKey, [1, 1, 1]);
 * await decryptVector(privateKey, PackedCiphertext.sum([a, b])); // Float64Array [1.5, 0, 3]
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { MIN_RECEIVED_KEY_BITS, PAILLIER_KEY_BITS, PaillierPrivateKey, PaillierPublicKey, assertReceivedPublicKey, djnBase, generatePaillierKeyPair, legacyPaillierFingerprint, paillierFingerprint } from './keys.ts';
export type { GenerateOptions, ObfuscationMode, PaillierKeyBits, PaillierKeyOptions, PaillierKeyPair } from './keys.ts';
export { PaillierCiphertext, decrypt, decryptNumber, encrypt, encryptNumber } from './ciphertext.ts';
export { DEFAULT_PACKING, PackedCiphertext, PackingLayout, decryptPacked, encryptPacked } from './packing.ts';
export type { DecryptPackedOptions, EncryptPackedOptions, PackedHeader, PackingSpec } from './packing.ts';
export { createPaillierPool, decryptVector, encryptVector, keyHolderPool, precomputeRandomizers, sharedPaillierPool } from './vector.ts';
export { RandomizerStock } from './randomizers.ts';
export type { DecryptVectorOptions, EncryptVectorOptions, Parallelism } from './vector.ts';
export {
  deserializeCiphertext,
  deserializePacked,
  deserializePrivateKey,
  deserializePublicKey,
  privateKeyFromJson,
  privateKeyToJson,
  publicKeyFromJson,
  publicKeyToJson,
  serializeCiphertext,
  serializePacked,
  serializePrivateKey,
  serializePublicKey,
} from './serialize.ts';
export type { PackedExpectations, PrivateKeyJson, PublicKeyJson } from './serialize.ts';
export { readPrivateKeyFile, readPublicKeyFile, writeKeyPairFiles } from './key-files.ts';
export {
  MAX_THRESHOLD_HOLDERS,
  ThresholdKeyShare,
  ThresholdPublicKey,
  combineShares,
  parseThresholdLabel,
  thresholdFingerprint,
  verifyDecryptionShare,
} from './threshold.ts';
export type { CombineOptions, DecryptionShare, ShareProof } from './threshold.ts';
export { THRESHOLD_KEY_BITS, dealFromSafePrimes, dealThresholdKey } from './threshold-dealer.ts';
export type { DealOptions, DealtThresholdKey } from './threshold-dealer.ts';
export { combinePacked, decryptionSharesOf } from './threshold-vector.ts';
export type { CombinedVector } from './threshold-vector.ts';
export {
  deserializeDecryptionShares,
  deserializeThresholdKeyShare,
  deserializeThresholdPublicKey,
  readThresholdKeyShareFile,
  readThresholdPublicKeyFile,
  serializeDecryptionShares,
  serializeThresholdKeyShare,
  serializeThresholdPublicKey,
  thresholdKeyPaths,
  writeThresholdKeyFiles,
} from './threshold-serialize.ts';
export type { KeyFileParam } from './key-files.ts';
