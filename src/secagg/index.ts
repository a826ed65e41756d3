/**
 * Secure aggregation (Bonawitz et al., CCS 2017): field and Shamir sharing, X25519 key agreement
 * and sealed boxes, the AES-CTR mask PRG with Z_{2^k} vector arithmetic, and quantization.
 */
export { FIELD_PRIME, FIELD_BYTES, fieldReduce, fieldAdd, fieldSub, fieldMul, fieldInv, randomFieldElement } from './field.ts';
export { MAX_SECRET_BYTES, MAX_SHARE_X, SHARE_BYTES, splitSecret, reconstructSecret, shareToBytes, shareFromBytes } from './shamir.ts';
export type { Share } from './shamir.ts';
export { X25519_KEY_BYTES, BOX_OVERHEAD_BYTES, generateX25519KeyPair, x25519PublicFromPrivate, agreeKey, sealBox, openBox } from './keys.ts';
export type { X25519KeyPair } from './keys.ts';
export { MAX_MASK_LENGTH, accumulateMask, aesCtrKeystream, expandMask, addMod, subMod, addModInPlace, reduceModInPlace, subModInPlace } from './prg.ts';
export { MAX_QUANTIZATION_RANGE, quantize, dequantizeSum, modulusBitsFor } from './quantize.ts';
export type { QuantizationSpec } from './quantize.ts';
export { SecAggClient, SecAggServer, checkThreshold, neighboursOf, secAggPlusDegree } from './protocol.ts';
export type { AdvertiseMsg, MaskedInputMsg, Roster, RosterEntry, SecAggMode, SecAggParams, SecAggResult, ShareInbox, ShareKeysMsg, ThresholdPolicy, UnmaskMsg, UnmaskRequest } from './protocol.ts';
