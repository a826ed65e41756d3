/**
 * `cipherml/attest`: verification of TEE attestation documents (Intel SGX DCAP v3, Intel TDX
 * v4/v5, AMD SEV-SNP, AWS Nitro Enclaves) against pinned vendor roots and a policy. Parsing and
 * verification only; no federated code.
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { defaultTrustAnchors } from './anchors.ts';
export type { AmdProductKeys, TrustAnchors } from './anchors.ts';
export { dcapCollateralFromPcs, parseDcapCollateralJson } from './dcap-collateral.ts';
export type { DcapCollateral, PcsCollateralParts } from './dcap-collateral.ts';
export { matchTcbLevel, verifyDcapQuote } from './dcap.ts';
export type { DcapVerifyOptions } from './dcap.ts';
export { parseDcapQuote } from './dcap-quote.ts';
export type { DcapQuote, SgxReportBody, TdReportBody } from './dcap-quote.ts';
export { ATTEST_CHECKS } from './fail.ts';
export type { AttestCheck } from './fail.ts';
export { coseSign1SigStructure, parseNitroDocument, verifyNitroDocument } from './nitro.ts';
export type { NitroDocument, NitroVerifyOptions } from './nitro.ts';
export { ATTESTATION_KINDS, DEFAULT_POLICY, loadPolicy, policyFromObject, TCB_STATUSES } from './policy.ts';
export type { AttestationKind, AttestationPolicy, SnpMinTcb } from './policy.ts';
export { SIMULATION_LABEL } from './result.ts';
export type { AttestationResult } from './result.ts';
export { parseSnpReport, verifySnpReport } from './snp.ts';
export type { SnpReport, SnpTcb, SnpVerifyOptions } from './snp.ts';
export { verifyReport } from './verify.ts';
export type { AttestationEvidence, VerifyReportOptions } from './verify.ts';
export { parseCertificateFile } from './x509.ts';
export { bindingDigest, expectBinding, reportDataBinding } from './binding.ts';
export type { BindingParts } from './binding.ts';
export { createSimulationReport, verifySimulationReport } from './simulation.ts';
export type { SimulationClaims } from './simulation.ts';
export { canonicalJson, measureBundle } from './measure.ts';
export type { Measurement, MeasureOptions } from './measure.ts';
export { createSealingSecret, loadSealingSecret, seal, unseal } from './seal.ts';
