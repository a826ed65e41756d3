import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dcapCollateralFromPcs, parseDcapCollateralJson, type DcapCollateral } from '../../src/attest/dcap-collateral.ts';
import { DEFAULT_POLICY, type AttestationKind, type AttestationPolicy } from '../../src/attest/policy.ts';
import type { AttestationEvidence } from '../../src/attest/verify.ts';
import { parseCertificateFile } from '../../src/attest/x509.ts';

/**
 * The real documents of test/attest/fixtures (copied from /work/shared/attestation; origins and
 * licences in fixtures/SOURCES.md), with the verification time and collateral each needs.
 */
export const FIXTURES: string = join(import.meta.dirname, 'fixtures');

export function fixture(path: string): Buffer {
  return readFileSync(join(FIXTURES, path));
}

/** Every Intel TCB status: tests that check fields accept any, tests of the TCB policy narrow it. */
export const ANY_TCB: AttestationPolicy = { ...DEFAULT_POLICY, acceptedTcbStatuses: ['UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded'] };

export function qvlCollateral(path: string): DcapCollateral {
  return parseDcapCollateralJson(JSON.parse(fixture(path).toString('utf8')), path);
}

const MC = 'sgx-dcap/mc-attestation/collateral/';
/** mc-attestation's PCS collateral; its PCK CRL is stale at the quote's time (the source does not check it). */
export function mcCollateral(opts: { pckCrl: boolean; tcbInfo?: string }): DcapCollateral {
  return dcapCollateralFromPcs({
    tcbInfoResponse: fixture(MC + (opts.tcbInfo ?? 'fmspc_00906ED50000_2023_07_12.json')).toString('utf8'),
    tcbInfoIssuerChain: fixture(MC + 'tcb_signer.pem').toString('utf8'),
    qeIdentityResponse: fixture(MC + 'qe_identity.json').toString('utf8'),
    qeIdentityIssuerChain: fixture(MC + 'tcb_signer.pem').toString('utf8'),
    rootCrl: fixture(MC + 'root_crl.der'),
    ...(opts.pckCrl ? { pckCrl: fixture(MC + 'processor_crl.der') } : {}),
  });
}

const GT = 'tdx/go-tdx-guest/collateral/';
export function goTdxCollateral(v5: boolean): DcapCollateral {
  return dcapCollateralFromPcs({
    tcbInfoResponse: fixture(GT + (v5 ? 'sample_tcbinfo_response_v5' : 'sample_tcbInfo_response')).toString('utf8'),
    tcbInfoIssuerChain: fixture(GT + 'tcb_info_issuer_chain.pem').toString('utf8'),
    qeIdentityResponse: fixture(GT + 'sample_qeIdentity_response').toString('utf8'),
    qeIdentityIssuerChain: fixture(GT + 'qe_identity_issuer_chain.pem').toString('utf8'),
    rootCrl: fixture(GT + 'rootcrl.der'),
    ...(v5 ? {} : { pckCrl: fixture(GT + 'pckcrl') }),
  });
}

/** One document of the fixtures: how to verify it at its recorded time. */
export interface Vector {
  readonly name: string;
  readonly kind: AttestationKind;
  readonly file: string;
  readonly at: string;
  readonly evidence: (document: Uint8Array) => AttestationEvidence;
  /** The least permissive policy under which the source accepts it (what is relaxed, and why, is in the comment). */
  readonly policy: AttestationPolicy;
}

const SNP = (vek: string) => (document: Uint8Array): AttestationEvidence => ({ kind: 'sev-snp', document, vek: parseCertificateFile(fixture(vek), vek) });

export const VECTORS: readonly Vector[] = [
  // dcap-qvl's sample: full collateral, TCB ConfigurationAndSWHardeningNeeded (asserted by the source).
  { name: 'sgx dcap-qvl', kind: 'sgx-dcap', file: 'sgx-dcap/dcap-qvl/sgx_quote', at: '2025-07-19T10:01:17Z', evidence: (document) => ({ kind: 'sgx-dcap', document, collateral: qvlCollateral('sgx-dcap/dcap-qvl/sgx_quote_collateral.json') }), policy: { ...DEFAULT_POLICY, acceptedTcbStatuses: ['UpToDate', 'ConfigurationAndSWHardeningNeeded'] } },
  // mc-attestation: the shipped PCK CRL expired before the quote was made (the source does not check it), so it is left out and revocation is not required.
  { name: 'sgx mc-attestation', kind: 'sgx-dcap', file: 'sgx-dcap/mc-attestation/hw_quote.dat', at: '2023-07-12T20:48:25Z', evidence: (document) => ({ kind: 'sgx-dcap', document, collateral: mcCollateral({ pckCrl: false }) }), policy: { ...DEFAULT_POLICY, acceptedTcbStatuses: ['UpToDate', 'SWHardeningNeeded'], requireRevocationCheck: false } },
  // mc-sgx-dcap-types: a debug enclave, shipped without TCB info (parse-level vector in its source).
  { name: 'sgx mc-sgx-dcap-types', kind: 'sgx-dcap', file: 'sgx-dcap/mc-sgx-dcap-types/hw_quote.dat', at: '2023-05-01T00:00:00Z', evidence: (document) => ({ kind: 'sgx-dcap', document }), policy: { ...DEFAULT_POLICY, allowDebug: true, requireCollateral: false, requireRevocationCheck: false } },
  // go-tdx-guest SPR: its sample TCB info has no level for this platform (the source expects that failure), so it verifies without collateral.
  { name: 'tdx go-tdx-guest v4', kind: 'tdx', file: 'tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat', at: '2023-07-01T01:00:00Z', evidence: (document) => ({ kind: 'tdx', document }), policy: { ...DEFAULT_POLICY, requireCollateral: false, requireRevocationCheck: false } },
  // go-tdx-guest v5: the shipped QE identity and TCB signing certificate are from 2023 and expired at the quote's 2026 time.
  { name: 'tdx go-tdx-guest v5', kind: 'tdx', file: 'tdx/go-tdx-guest/quote_v5_sample.dat', at: '2026-02-03T01:00:00Z', evidence: (document) => ({ kind: 'tdx', document }), policy: { ...DEFAULT_POLICY, requireCollateral: false, requireRevocationCheck: false } },
  { name: 'tdx dcap-qvl', kind: 'tdx', file: 'tdx/dcap-qvl/tdx_quote', at: '2025-07-19T10:00:34Z', evidence: (document) => ({ kind: 'tdx', document, collateral: qvlCollateral('tdx/dcap-qvl/tdx_quote_collateral.json') }), policy: DEFAULT_POLICY },
  // go-sev-guest's report has guest policy DEBUG set (the source's own expectation: SnpPolicy{Debug: true}).
  { name: 'snp go-sev-guest', kind: 'sev-snp', file: 'sev-snp/go-sev-guest/attestation.bin', at: '2022-09-24T01:00:00Z', evidence: SNP('sev-snp/go-sev-guest/vcek.testcer'), policy: { ...DEFAULT_POLICY, allowDebug: true } },
  { name: 'snp trustee vcek', kind: 'sev-snp', file: 'sev-snp/trustee/test-report.bin', at: '2024-01-01T00:00:00Z', evidence: SNP('sev-snp/trustee/test-vcek.der'), policy: DEFAULT_POLICY },
  { name: 'snp trustee vlek', kind: 'sev-snp', file: 'sev-snp/trustee/test-vlek-report.bin', at: '2025-06-01T00:00:00Z', evidence: SNP('sev-snp/trustee/test-vlek.der'), policy: DEFAULT_POLICY },
  { name: 'snp oak genoa', kind: 'sev-snp', file: 'sev-snp/oak/genoa_oc_report.bin', at: '2025-10-01T08:00:00Z', evidence: SNP('sev-snp/oak/genoa_oc_vcek.der'), policy: DEFAULT_POLICY },
  { name: 'nitro evervault beta', kind: 'nitro', file: 'nitro/evervault/beta-valid-attestation-doc-bytes.cbor', at: '2022-10-13T08:58:02.136Z', evidence: (document) => ({ kind: 'nitro', document }), policy: DEFAULT_POLICY },
  // The other three Nitro documents come from debug-mode enclaves (PCR0/1/2 zero).
  { name: 'nitro evervault beta debug', kind: 'nitro', file: 'nitro/evervault/beta-debug-mode-attestation-doc-bytes.cbor', at: '2022-10-12T13:50:06.081Z', evidence: (document) => ({ kind: 'nitro', document }), policy: { ...DEFAULT_POLICY, allowDebug: true } },
  { name: 'nitro evervault ga', kind: 'nitro', file: 'nitro/evervault/ga-valid-attestation-doc.cbor', at: '2023-09-18T15:16:05Z', evidence: (document) => ({ kind: 'nitro', document }), policy: { ...DEFAULT_POLICY, allowDebug: true } },
  { name: 'nitro blindai', kind: 'nitro', file: 'nitro/blindai/nitro_attestation_document_valid.cbor', at: '2023-03-22T14:28:27.405Z', evidence: (document) => ({ kind: 'nitro', document }), policy: { ...DEFAULT_POLICY, allowDebug: true } },
];

export function vector(name: string): Vector {
  const v = VECTORS.find((x) => x.name === name);
  if (v === undefined) throw new Error(`no vector ${name}`);
  return v;
}
