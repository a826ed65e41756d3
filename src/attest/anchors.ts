import type { X509Certificate } from 'node:crypto';
import { parsePemChain } from './x509.ts';
import { AMD_GENOA_ARK_PEM, AMD_GENOA_ASK_PEM, AMD_GENOA_ASVK_PEM, AMD_MILAN_ARK_PEM, AMD_MILAN_ASK_PEM, AMD_MILAN_ASVK_PEM, AWS_NITRO_ROOT_G1_PEM, INTEL_SGX_ROOT_CA_PEM } from './roots.ts';

/** AMD's per-product keys: the root (ARK), the VCEK signer (ASK) and the VLEK signer (ASVK). */
export interface AmdProductKeys {
  readonly ark: X509Certificate;
  readonly ask: X509Certificate;
  readonly asvk: X509Certificate;
}

/**
 * The roots a verifier trusts. The defaults are the vendor roots shipped in the package; tests and
 * deployments pinning other roots pass their own.
 */
export interface TrustAnchors {
  /** Roots of SGX and TDX DCAP quotes (Intel SGX Root CA). */
  readonly intel: readonly X509Certificate[];
  /** Roots of AWS Nitro attestation documents. */
  readonly nitro: readonly X509Certificate[];
  /** AMD keys by product name as it appears in the VCEK (`Milan`, `Genoa`). */
  readonly amd: Readonly<Record<string, AmdProductKeys>>;
}

let defaults: TrustAnchors | undefined;

function one(pem: string, name: string): X509Certificate {
  return parsePemChain(pem, name)[0]!;
}

/**
 * The pinned vendor roots shipped with cipherml.
 *
 * @example
 * ```ts
 * const anchors = defaultTrustAnchors();
 * console.log(anchors.intel[0]!.subject);
 * ```
 */
export function defaultTrustAnchors(): TrustAnchors {
  defaults ??= {
    intel: [one(INTEL_SGX_ROOT_CA_PEM, 'Intel SGX Root CA')],
    nitro: [one(AWS_NITRO_ROOT_G1_PEM, 'AWS Nitro Root G1')],
    amd: {
      Milan: { ark: one(AMD_MILAN_ARK_PEM, 'ARK-Milan'), ask: one(AMD_MILAN_ASK_PEM, 'SEV-Milan'), asvk: one(AMD_MILAN_ASVK_PEM, 'SEV-VLEK-Milan') },
      Genoa: { ark: one(AMD_GENOA_ARK_PEM, 'ARK-Genoa'), ask: one(AMD_GENOA_ASK_PEM, 'SEV-Genoa'), asvk: one(AMD_GENOA_ASVK_PEM, 'SEV-VLEK-Genoa') },
    },
  };
  return defaults;
}
