import { CipherMLError, type ErrorCode } from '../core/errors.ts';

/**
 * The named checks a verifier runs. Every refusal carries one of these in `details.check` and in
 * its message, so a caller (and a test) can tell which check failed.
 */
export const ATTEST_CHECKS = [
  'parse',
  'kind',
  'body-signature',
  'qe-report-signature',
  'qe-report-binding',
  'attestation-key',
  'certificate-chain',
  'pinned-root',
  'certificate-validity',
  'tcb-info-signature',
  'tcb-info-validity',
  'tcb-info-platform',
  'qe-identity-signature',
  'qe-identity-validity',
  'qe-identity-match',
  'crl-signature',
  'crl-validity',
  'revocation',
  'tcb-status',
  'vek-tcb-match',
  'vek-chip-id',
  'min-tcb',
  'min-svn',
  'measurement',
  'signer',
  'product',
  'pcr',
  'debug',
  'report-data',
  'nonce',
  'simulation',
  'collateral-present',
] as const;

/** One of {@link ATTEST_CHECKS}. */
export type AttestCheck = (typeof ATTEST_CHECKS)[number];

/**
 * Builds the refusal for a failed check: `code` says which family (signature, chain, …), the
 * message starts with `check <name> failed`, and `param` names the document field or policy key.
 */
export function attestError(code: ErrorCode, check: AttestCheck, problem: string, param?: string, cause?: unknown): CipherMLError {
  return new CipherMLError(code, `check ${check} failed: ${problem}`, {
    ...(param === undefined ? {} : { param }),
    details: { check },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Lower-case hex of bytes. */
export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Constant-time-irrelevant byte equality (all inputs here are public). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

const disabled = new Set<AttestCheck>();

/**
 * Internal test hook (not exported from `cipherml/attest`): runs `f` with the named checks
 * skipped, so a test can show that its tampered document would be accepted without the defence
 * (and therefore that the refusal it asserts is made by that check).
 */
export function withChecksDisabled<T>(checks: readonly AttestCheck[], f: () => T): T {
  for (const c of checks) disabled.add(c);
  try {
    return f();
  } finally {
    for (const c of checks) disabled.delete(c);
  }
}

/** Whether a check runs (always, outside {@link withChecksDisabled}). */
export function checkEnabled(check: AttestCheck): boolean {
  return disabled.size === 0 || !disabled.has(check);
}
