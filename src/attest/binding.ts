import { createHash } from 'node:crypto';
import { attestError, bytesEqual, hex } from './fail.ts';
import type { AttestationResult } from './result.ts';

/** The keys an aggregator's attestation document binds. */
export interface BindingParts {
  /** The aggregator's Paillier public key, serialized. */
  readonly paillierPublicKey: Uint8Array;
  /** The aggregator's TLS public key (SubjectPublicKeyInfo DER). */
  readonly tlsPublicKey: Uint8Array;
  readonly runId: string;
}

const DOMAIN = 'cipherml/attest/report-data/v1';

/**
 * SHA-256(Paillier public key ‖ TLS public key ‖ run id) as 32 bytes. The ‖ is made injective by
 * prefixing the domain and each part with its 4-byte big-endian length, so no two different
 * (key, key, run) triples hash the same byte string.
 *
 * @example
 * ```ts
 * const digest = bindingDigest({ paillierPublicKey, tlsPublicKey, runId: 'run-42' });
 * ```
 */
export function bindingDigest(parts: BindingParts): Uint8Array {
  const h = createHash('sha256');
  for (const p of [Buffer.from(DOMAIN), parts.paillierPublicKey, parts.tlsPublicKey, Buffer.from(parts.runId, 'utf8')]) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(p.length);
    h.update(len).update(p);
  }
  return new Uint8Array(h.digest());
}

/**
 * The 64-byte report data an aggregator asks its TEE to sign: {@link bindingDigest} followed by
 * 32 zero bytes (SGX/TDX/SNP report data is 64 bytes; Nitro user_data carries the 32-byte digest).
 *
 * @example
 * ```ts
 * const reportData = reportDataBinding({ paillierPublicKey, tlsPublicKey, runId });
 * ```
 */
export function reportDataBinding(parts: BindingParts): Uint8Array {
  const out = new Uint8Array(64);
  out.set(bindingDigest(parts), 0);
  return out;
}

/**
 * Refuses a verified document whose report data does not bind exactly these keys and run: what a
 * worker checks against the Paillier key it was given and the TLS key of the connection it is on.
 *
 * @example
 * ```ts
 * const r = verifyReport(evidence, policy);
 * expectBinding(r, { paillierPublicKey, tlsPublicKey: peerSpki, runId });
 * ```
 */
export function expectBinding(result: AttestationResult, parts: BindingParts): void {
  const digest = bindingDigest(parts);
  const want = result.kind === 'nitro' ? digest : reportDataBinding(parts);
  const got = Buffer.from(result.reportData, 'hex');
  if (!bytesEqual(got, want)) {
    throw attestError('CIPHERML_E_ATTESTATION_REPORT_DATA', 'report-data', `the report data ${result.reportData.slice(0, 16)}… does not bind this Paillier key, TLS key and run id (expected ${hex(want).slice(0, 16)}…)`, 'report-data');
  }
}
