import type { X509Certificate } from 'node:crypto';
import type { TrustAnchors } from './anchors.ts';
import type { DcapCollateral } from './dcap-collateral.ts';
import { verifyDcapQuote } from './dcap.ts';
import { attestError } from './fail.ts';
import { verifyNitroDocument } from './nitro.ts';
import type { AttestationKind, AttestationPolicy } from './policy.ts';
import type { AttestationResult } from './result.ts';
import { verifySimulationReport } from './simulation.ts';
import { verifySnpReport } from './snp.ts';

/** An attestation document and what its verification needs besides the pinned roots. */
export interface AttestationEvidence {
  readonly kind: AttestationKind;
  readonly document: Uint8Array;
  /** Intel PCS collateral (SGX/TDX). */
  readonly collateral?: DcapCollateral;
  /** The VCEK/VLEK certificate (SEV-SNP). */
  readonly vek?: X509Certificate;
}

/** Options of {@link verifyReport}. */
export interface VerifyReportOptions {
  /** Verification time; default now. */
  readonly at?: Date;
  readonly anchors?: TrustAnchors;
}

/**
 * Verifies any supported attestation document under `policy`: dispatches on `evidence.kind`,
 * throws a typed refusal naming the failed check, or returns the extracted fields. Simulation
 * reports (no hardware isolation) are accepted only when the policy sets allow-simulation and
 * pins the simulator key in simulation-signers.
 *
 * @example
 * ```ts
 * const r = verifyReport({ kind: 'nitro', document: bytes }, policy);
 * if (r.debug) throw new Error('unreachable: debug is refused unless allowed');
 * ```
 */
export function verifyReport(evidence: AttestationEvidence, policy: AttestationPolicy, options: VerifyReportOptions = {}): AttestationResult {
  const at = options.at ?? new Date();
  const anchors = options.anchors === undefined ? {} : { anchors: options.anchors };
  switch (evidence.kind) {
    case 'sgx-dcap':
    case 'tdx':
      return verifyDcapQuote(evidence.document, { kind: evidence.kind, at, policy, ...anchors, ...(evidence.collateral === undefined ? {} : { collateral: evidence.collateral }) });
    case 'sev-snp':
      if (evidence.vek === undefined) throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', 'an SEV-SNP report needs the VCEK or VLEK certificate that signed it', '--vek');
      return verifySnpReport(evidence.document, { at, policy, vek: evidence.vek, ...anchors });
    case 'nitro':
      return verifyNitroDocument(evidence.document, { at, policy, ...anchors });
    case 'simulation':
      return verifySimulationReport(evidence.document, policy, at);
  }
}
