/**
 * cipherml/core — the error catalog, guards, fixed-point encoding, binary envelope, safe file
 * writes, worker pool and modular-arithmetic backends shared by every capability.
 *
 * @example
 * ```ts
 * import { CipherMLError, FixedPointCodec } from 'cipherml/core';
 * new FixedPointCodec({ fractionalBits: 16, integerBits: 15 }).encode(0.5); // 32768n
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import './node-version.ts';
export { CipherMLError, ERROR_CATALOG, isCipherMLError } from './errors.ts';
export type { CipherMLErrorOptions, ErrorCode } from './errors.ts';
export { assertBigInt, assertFiniteVector, assertIntegerInRange, assertOneOf, describe } from './guards.ts';
export { DEFAULT_FIXED_POINT, FixedPointCodec } from './fixed-point.ts';
export type { FixedPointSpec } from './fixed-point.ts';
export { ByteReader, ByteWriter, ENVELOPE_KINDS, ENVELOPE_SCHEMES, ENVELOPE_VERSION, openEnvelope, sealEnvelope } from './envelope.ts';
export type { Envelope, EnvelopeKind, EnvelopeScheme } from './envelope.ts';
export { readFileTyped, writeFileSafely } from './io.ts';
export { assertSigned, generateIdentity, IDENTITY_ROLES, identityFingerprint, loadIdentity, loadPublicIdentity, loadRoster, publicIdentity, publicIdentityFromJson, publicIdentityToJson, Roster, saveIdentity, signMessage, verifyMessage } from './identity.ts';
export type { Identity, IdentityRole, PublicIdentity } from './identity.ts';
export type { WriteFileOptions } from './io.ts';
export { WorkerPool } from './worker-pool.ts';
export type { WorkerPoolOptions } from './worker-pool.ts';
export { availableBackends, getBackend } from './bigmath/index.ts';
export type { BackendPreference, FixedBasePow, ModArithBackend } from './bigmath/index.ts';
