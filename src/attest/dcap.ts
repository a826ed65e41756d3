import { createHash, createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { defaultTrustAnchors, type TrustAnchors } from './anchors.ts';
import { parseQeIdentity, parseTcbInfo, type DcapCollateral, type SignedCollateralItem, type TcbInfo, type TcbLevel } from './dcap-collateral.ts';
import { parseDcapQuote, type DcapQuote } from './dcap-quote.ts';
import { attestError, bytesEqual, checkEnabled, hex, type AttestCheck } from './fail.ts';
import { pckExtensions, type PckExtensions } from './pck.ts';
import { expectKind, expectNoNonce, expectNotDebug, expectOneOf, expectReportData, expectTcbStatus, type AttestationPolicy } from './policy.ts';
import type { AttestationResult } from './result.ts';
import { checkCrl, parsePemChain, verifyChain, verifyRawEcdsa } from './x509.ts';

/**
 * Verification of Intel SGX (v3) and TDX (v4/v5) DCAP quotes, following Intel's Quote
 * Verification Library order: quote signature by the attestation key; QE report signature by the
 * PCK key; QE report data = SHA-256(attestation key ‖ QE auth data) ‖ 0³²; PCK chain to the pinned
 * Intel SGX Root CA; then the collateral (TCB info and QE identity signed by the Intel TCB
 * Signing key, CRLs) and the TCB level of the platform (PCS API v4, "TCB level matching").
 */

/** Options of {@link verifyDcapQuote}. */
export interface DcapVerifyOptions {
  readonly kind: 'sgx-dcap' | 'tdx';
  readonly at: Date;
  readonly policy: AttestationPolicy;
  readonly collateral?: DcapCollateral;
  readonly anchors?: TrustAnchors;
}

function attestationKey(raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: Buffer.from(raw.subarray(0, 32)).toString('base64url'), y: Buffer.from(raw.subarray(32, 64)).toString('base64url') }, format: 'jwk' });
  } catch (e) {
    throw attestError('CIPHERML_E_ATTESTATION_SIGNATURE', 'attestation-key', 'the attestation key in the quote is not a point on P-256', 'attestation_key', e);
  }
}

function checkWindow(issue: Date, next: Date, at: Date, check: 'tcb-info-validity' | 'qe-identity-validity', what: string): void {
  // Intel collateral windows are half-open: issueDate ≤ at < nextUpdate.
  if (at.getTime() < issue.getTime()) throw attestError('CIPHERML_E_ATTESTATION_EXPIRED', check, `${what} not yet valid: issued ${issue.toISOString()}, verification time ${at.toISOString()}`, what);
  if (at.getTime() >= next.getTime()) throw attestError('CIPHERML_E_ATTESTATION_EXPIRED', check, `${what} expired: next update was due ${next.toISOString()}, verification time ${at.toISOString()}`, what);
}

function checkSignedItem(item: SignedCollateralItem, anchors: readonly X509Certificate[], at: Date, what: string, check: 'tcb-info-signature' | 'qe-identity-signature', verified: X509Certificate[] | undefined): X509Certificate[] {
  // TCB info and QE identity usually share the TCB Signing chain; a chain already verified in this call is not verified twice.
  const same = verified !== undefined && verified.length >= item.issuerChain.length && item.issuerChain.every((c, i) => bytesEqual(c.raw, verified[i]!.raw));
  const path = same ? verified : verifyChain(item.issuerChain, anchors, { field: `${what} issuer chain`, at });
  if (!verifyRawEcdsa('sha256', item.body, path[0]!.publicKey, item.signature)) {
    throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', check, `the ${what} signature does not verify with the Intel TCB Signing key`, what);
  }
  return path;
}

function geAll(have: readonly number[] | Uint8Array, want: readonly number[], from = 0): boolean {
  for (let i = from; i < want.length; i++) if ((have[i] ?? 0) < want[i]!) return false;
  return true;
}

/** The first TCB level the platform meets (levels are ordered newest first; PCS API v4 §TCB level matching). */
export function matchTcbLevel(info: TcbInfo, ext: PckExtensions, teeTcbSvn: Uint8Array | undefined): TcbLevel | undefined {
  for (const level of info.levels) {
    if (!geAll(ext.sgxTcbComponents, level.sgxComponents) || ext.pceSvn < level.pceSvn) continue;
    if (teeTcbSvn !== undefined) {
      if (level.tdxComponents === undefined) continue;
      // TDX module 1.5+ (tee_tcb_svn[1] > 0): the first two bytes are the module major/minor version, not SVNs.
      if (!geAll(teeTcbSvn, level.tdxComponents, teeTcbSvn[1]! > 0 ? 2 : 0)) continue;
    }
    return level;
  }
  return undefined;
}

/**
 * Verifies an SGX or TDX DCAP quote at time `at` under `policy`; throws a typed refusal naming the
 * failed check, or returns the extracted fields.
 *
 * @example
 * ```ts
 * const r = verifyDcapQuote(quote, { kind: 'sgx-dcap', at: new Date(), policy, collateral });
 * console.log(r.measurement, r.tcbStatus);
 * ```
 */
export function verifyDcapQuote(bytes: Uint8Array, opts: DcapVerifyOptions): AttestationResult {
  const { policy, at } = opts;
  const anchors = (opts.anchors ?? defaultTrustAnchors()).intel;
  const checks: AttestCheck[] = [];
  expectNoNonce(policy);
  expectKind(opts.kind, policy);
  const q: DcapQuote = parseDcapQuote(bytes);
  checks.push('parse');
  if (opts.kind === 'sgx-dcap' && q.sgx === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'kind', 'this is a TDX quote, not an SGX quote: pass --kind tdx', '--kind');
  if (opts.kind === 'tdx' && q.td === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'kind', 'this is an SGX quote, not a TDX quote: pass --kind sgx-dcap', '--kind');
  checks.push('kind');
  const key = attestationKey(q.attestationKey);
  checks.push('attestation-key');
  if (checkEnabled('body-signature') && !verifyRawEcdsa('sha256', q.signedRegion, key, q.signature)) throw attestError('CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature', 'the quote signature over the header and report body does not verify with the attestation key', 'signature');
  checks.push('body-signature');
  const chain = parsePemChain(q.pckChainPem, 'PCK certificate chain');
  const path = verifyChain(chain, anchors, { field: 'PCK certificate chain', at });
  if (!bytesEqual(path[path.length - 1]!.raw, chain[chain.length - 1]!.raw)) {
    // The quote's chain must itself end in the pinned root (Intel ships leaf ‖ intermediate ‖ root).
    throw attestError('CIPHERML_E_ATTESTATION_CHAIN', 'pinned-root', 'the PCK chain in the quote does not end in the pinned Intel SGX Root CA', 'PCK certificate chain');
  }
  checks.push('pinned-root', 'certificate-chain', 'certificate-validity');
  const pck = path[0]!;
  const pckCa = path[1]!;
  if (!verifyRawEcdsa('sha256', q.qeReport, pck.publicKey, q.qeReportSignature)) throw attestError('CIPHERML_E_ATTESTATION_SIGNATURE', 'qe-report-signature', 'the QE report signature does not verify with the PCK certificate key', 'qe_report_signature');
  checks.push('qe-report-signature');
  const binding = createHash('sha256').update(q.attestationKey).update(q.qeAuthData).digest();
  if (!bytesEqual(q.qeReportBody.reportData, Buffer.concat([binding, Buffer.alloc(32)]))) {
    throw attestError('CIPHERML_E_ATTESTATION_SIGNATURE', 'qe-report-binding', 'the QE report data is not SHA-256(attestation key ‖ QE auth data): the attestation key was not certified by this QE', 'qe_report.report_data');
  }
  checks.push('qe-report-binding');
  const ext = pckExtensions(pck);

  let tcbStatus = 'not-evaluated';
  let qeTcbStatus = 'not-evaluated';
  let advisoryIds: readonly string[] = [];
  const c = opts.collateral;
  if (c === undefined) {
    if (policy.requireCollateral) throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', 'no collateral (TCB info, QE identity) was given and require-collateral is true', '--collateral');
  } else {
    const tcbSignerPath = checkSignedItem(c.tcbInfo, anchors, at, 'TCB info', 'tcb-info-signature', undefined);
    checks.push('tcb-info-signature');
    const info = parseTcbInfo(c.tcbInfo.body);
    checkWindow(info.issueDate, info.nextUpdate, at, 'tcb-info-validity', 'TCB info');
    checks.push('tcb-info-validity');
    const wantId = opts.kind === 'tdx' ? 'TDX' : 'SGX';
    if (info.fmspc !== ext.fmspc || info.pceId !== ext.pceId || (info.id !== undefined && info.id !== wantId)) {
      throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'tcb-info-platform', `the TCB info is for ${info.id ?? 'SGX'} FMSPC ${info.fmspc} PCE ${info.pceId}, the PCK certificate says ${wantId} FMSPC ${ext.fmspc} PCE ${ext.pceId} (fmspc mismatch)`, 'tcbInfo.fmspc');
    }
    if (q.td !== undefined && info.tdxModuleMrSigner !== undefined && info.tdxModuleMrSigner !== q.td.mrSignerSeam) {
      throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'tcb-info-platform', `MRSIGNERSEAM ${q.td.mrSignerSeam} is not the TDX module signer ${info.tdxModuleMrSigner} of the TCB info`, 'mr_signer_seam');
    }
    checks.push('tcb-info-platform');
    checkSignedItem(c.qeIdentity, anchors, at, 'QE identity', 'qe-identity-signature', tcbSignerPath);
    checks.push('qe-identity-signature');
    const qe = parseQeIdentity(c.qeIdentity.body);
    checkWindow(qe.issueDate, qe.nextUpdate, at, 'qe-identity-validity', 'QE identity');
    checks.push('qe-identity-validity');
    const rep = q.qeReportBody;
    const attrs = Buffer.from(rep.attributes, 'hex');
    const mask = Buffer.from(qe.attributesMask, 'hex');
    const maskedAttrs = hex(attrs.map((a, i) => a & (mask[i] ?? 0)));
    const wantQeId = opts.kind === 'tdx' ? 'TD_QE' : 'QE';
    const mismatch =
      qe.id !== wantQeId ? `identity ${qe.id} is not ${wantQeId}`
      : rep.mrSigner !== qe.mrSigner ? `MRSIGNER ${rep.mrSigner} is not ${qe.mrSigner}`
      : rep.isvProdId !== qe.isvProdId ? `ISVPRODID ${rep.isvProdId} is not ${qe.isvProdId}`
      : ((rep.miscSelect & qe.miscSelectMask) >>> 0) !== qe.miscSelect ? 'MISCSELECT does not match under the mask'
      : maskedAttrs !== qe.attributes ? 'ATTRIBUTES do not match under the mask'
      : undefined;
    if (mismatch !== undefined) throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'qe-identity-match', `the quoting enclave is not the one Intel's QE identity describes: ${mismatch}`, 'qe_report');
    checks.push('qe-identity-match');
    const qeLevel = qe.levels.find((l) => rep.isvSvn >= l.isvSvn);
    if (qeLevel === undefined) throw attestError('CIPHERML_E_ATTESTATION_TCB', 'tcb-status', `the quoting enclave's ISVSVN ${rep.isvSvn} is below every TCB level of Intel's QE identity`, 'qe_report.isv_svn');
    qeTcbStatus = qeLevel.status;
    if (c.rootCrl !== undefined) {
      checkCrl(c.rootCrl, path[path.length - 1]!, path.slice(1, -1), at, 'root CA CRL');
      checks.push('crl-signature', 'crl-validity');
    }
    if (c.pckCrl !== undefined) {
      checkCrl(c.pckCrl, pckCa, [pck], at, 'PCK CRL');
      if (!checks.includes('crl-signature')) checks.push('crl-signature', 'crl-validity');
    }
    if (c.rootCrl !== undefined && c.pckCrl !== undefined) checks.push('revocation');
    const level = matchTcbLevel(info, ext, q.td?.teeTcbSvn);
    if (level === undefined) throw attestError('CIPHERML_E_ATTESTATION_TCB', 'tcb-status', 'no TCB level of the TCB info matches this platform (its SVNs are below every level Intel lists)', 'tcbInfo.tcbLevels');
    tcbStatus = level.status;
    advisoryIds = [...level.advisoryIds, ...qeLevel.advisoryIds];
    if (checkEnabled('tcb-status')) {
      expectTcbStatus(tcbStatus, policy, 'the platform', level.advisoryIds);
      expectTcbStatus(qeTcbStatus, policy, 'the quoting enclave', qeLevel.advisoryIds);
    }
    checks.push('tcb-status');
  }
  if (policy.requireRevocationCheck && (c?.rootCrl === undefined || c.pckCrl === undefined)) {
    throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', 'the root CA CRL and PCK CRL are needed to check revocation and require-revocation-check is true', '--collateral');
  }

  let measurement: string;
  let reportData: Uint8Array;
  let debug: boolean;
  const securityVersions: Record<string, number | string> = { qe_svn: q.qeSvn, pce_svn: q.pceSvn, pck_pcesvn: ext.pceSvn, pck_cpusvn: ext.cpuSvn, pck_sgx_tcb_components: ext.sgxTcbComponents.join(',') };
  const fields: Record<string, string | number | boolean> = { version: q.version, fmspc: ext.fmspc, pce_id: ext.pceId, qe_vendor_id: q.qeVendorId, qe_tcb_status: qeTcbStatus, trailing_bytes: q.trailingBytes,
    qe_mr_enclave: q.qeReportBody.mrEnclave, qe_mr_signer: q.qeReportBody.mrSigner, qe_isv_prod_id: q.qeReportBody.isvProdId, qe_isv_svn: q.qeReportBody.isvSvn, header_user_data: q.userData, tee_type: q.teeType };
  if (q.sgx !== undefined) {
    const s = q.sgx;
    measurement = s.mrEnclave;
    reportData = s.reportData;
    debug = s.debug;
    Object.assign(securityVersions, { isv_svn: s.isvSvn, config_svn: s.configSvn, cpu_svn: s.cpuSvn });
    Object.assign(fields, { mr_enclave: s.mrEnclave, mr_signer: s.mrSigner, isv_prod_id: s.isvProdId, attributes: s.attributes, misc_select: s.miscSelect, config_id: s.configId });
    expectNotDebug(debug, policy, 'SGX ATTRIBUTES.DEBUG is set');
    checks.push('debug');
    expectOneOf(s.mrEnclave, policy.measurements, 'measurement', 'measurement', 'MRENCLAVE');
    expectOneOf(s.mrEnclave, policy.mrEnclave, 'measurement', 'mrenclave', 'MRENCLAVE');
    expectOneOf(s.mrSigner, policy.mrSigner, 'signer', 'mrsigner', 'MRSIGNER');
    if (policy.isvProdId !== undefined && s.isvProdId !== policy.isvProdId) throw attestError('CIPHERML_E_ATTESTATION_POLICY', 'measurement', `ISVPRODID is ${s.isvProdId}, the policy key isv-prod-id expects ${policy.isvProdId}`, 'isv-prod-id');
    if (policy.minSvn !== undefined && s.isvSvn < policy.minSvn) throw attestError('CIPHERML_E_ATTESTATION_TCB', 'min-svn', `ISVSVN is ${s.isvSvn}, below min-svn ${policy.minSvn}`, 'min-svn');
  } else {
    const t = q.td!;
    measurement = t.mrTd;
    reportData = t.reportData;
    debug = t.debug;
    Object.assign(securityVersions, { tee_tcb_svn: hex(t.teeTcbSvn), ...(t.teeTcbSvn2 === undefined ? {} : { tee_tcb_svn2: t.teeTcbSvn2 }) });
    Object.assign(fields, {
      body_type: q.bodyType, mr_td: t.mrTd, mr_seam: t.mrSeam, mr_signer_seam: t.mrSignerSeam, td_attributes: t.tdAttributes, xfam: t.xfam,
      mr_config_id: t.mrConfigId, mr_owner: t.mrOwner, mr_owner_config: t.mrOwnerConfig, rtmr0: t.rtmr[0], rtmr1: t.rtmr[1], rtmr2: t.rtmr[2], rtmr3: t.rtmr[3],
      ...(t.mrServiceTd === undefined ? {} : { mr_servicetd: t.mrServiceTd }),
    });
    expectNotDebug(debug, policy, 'TD_ATTRIBUTES.DEBUG is set');
    checks.push('debug');
    expectOneOf(t.mrTd, policy.measurements, 'measurement', 'measurement', 'MRTD');
    expectOneOf(t.mrTd, policy.mrTd, 'measurement', 'mrtd', 'MRTD');
    expectOneOf(t.mrSeam, policy.mrSeam, 'measurement', 'mrseam', 'MRSEAM');
    for (const [i, want] of Object.entries(policy.rtmr ?? {})) expectOneOf(t.rtmr[Number(i)]!, [want], 'measurement', `rtmr.${i}`, `RTMR${i}`);
    if (policy.minTeeTcbSvn !== undefined && !geAll(t.teeTcbSvn, [...Buffer.from(policy.minTeeTcbSvn, 'hex')])) {
      throw attestError('CIPHERML_E_ATTESTATION_TCB', 'min-svn', `TEE_TCB_SVN ${hex(t.teeTcbSvn)} is below min-tee-tcb-svn ${policy.minTeeTcbSvn}`, 'min-tee-tcb-svn');
    }
  }
  checks.push('measurement');
  expectReportData(reportData, policy, 'REPORTDATA', true);
  if (policy.reportData !== undefined) checks.push('report-data');
  return {
    kind: opts.kind,
    verified: true,
    at: at.toISOString(),
    measurement,
    reportData: hex(reportData),
    debug,
    securityVersions,
    tcbStatus,
    advisoryIds,
    fields,
    checks,
    simulation: false,
    isolation: opts.kind === 'tdx' ? 'hardware: Intel TDX' : 'hardware: Intel SGX',
  };
}
