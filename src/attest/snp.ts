import type { X509Certificate } from 'node:crypto';
import { readTlv, TAG, uintOf } from './der.ts';
import { defaultTrustAnchors, type TrustAnchors } from './anchors.ts';
import { attestError, bytesEqual, checkEnabled, hex, type AttestCheck } from './fail.ts';
import { expectKind, expectNoNonce, expectNotDebug, expectOneOf, expectReportData, type AttestationPolicy } from './policy.ts';
import { leU32, leU64 } from './reader.ts';
import type { AttestationResult } from './result.ts';
import { certificateExtensions, verifyChain, verifyRawEcdsa } from './x509.ts';

/**
 * AMD SEV-SNP attestation reports (AMD "SEV Secure Nested Paging Firmware ABI Specification"
 * rev 1.55+, Table 22 ATTESTATION_REPORT): 1184 bytes, ECDSA P-384/SHA-384 signature over bytes
 * 0x000–0x29F with r and s as 72-byte little-endian fields. The signing key is the chip's VCEK,
 * or a cloud provider's VLEK; they chain VCEK → ASK → ARK and VLEK → ASVK → ARK with RSASSA-PSS
 * signatures ("Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
 * Specification" §3). The VCEK's SPL extensions must equal the report's REPORTED_TCB.
 */

export const SNP_REPORT_BYTES = 0x4a0;
const SIGNED_BYTES = 0x2a0;

/** A TCB version split into its security patch levels (Milan/Genoa layout). */
export interface SnpTcb {
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
}

/** The fields of an SNP report. */
export interface SnpReport {
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: bigint;
  readonly familyId: string;
  readonly imageId: string;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly currentTcb: SnpTcb;
  readonly platformInfo: bigint;
  readonly signingKey: 'vcek' | 'vlek';
  readonly reportData: Uint8Array;
  readonly measurement: string;
  readonly hostData: string;
  readonly idKeyDigest: string;
  readonly authorKeyDigest: string;
  readonly reportId: string;
  readonly reportedTcb: SnpTcb;
  readonly cpuid: { readonly family: number; readonly model: number; readonly stepping: number } | undefined;
  readonly chipId: Uint8Array;
  readonly committedTcb: SnpTcb;
  readonly launchTcb: SnpTcb;
  /** GUEST POLICY bit 19: the guest may be debugged by the hypervisor. */
  readonly debug: boolean;
  readonly signature: Uint8Array;
}

function tcbAt(b: Uint8Array, off: number): SnpTcb {
  return { bootloader: b[off]!, tee: b[off + 1]!, snp: b[off + 6]!, microcode: b[off + 7]! };
}

/**
 * Parses an SNP attestation report (exactly 1184 bytes, versions 2–5).
 *
 * @example
 * ```ts
 * const r = parseSnpReport(await readFile('report.bin'));
 * console.log(r.measurement);
 * ```
 */
export function parseSnpReport(b: Uint8Array): SnpReport {
  if (b.length !== SNP_REPORT_BYTES) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `an SNP attestation report is ${SNP_REPORT_BYTES} bytes, this one is ${b.length}`, 'report');
  const version = leU32(b, 0);
  if (version < 2 || version > 5) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `report version ${version} is not supported (2 to 5)`, 'version');
  const signatureAlgo = leU32(b, 0x34);
  if (signatureAlgo !== 1) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `signature algorithm ${signatureAlgo} is not 1 (ECDSA P-384 with SHA-384)`, 'signature_algo');
  const keySel = (leU32(b, 0x48) >> 2) & 7;
  if (keySel !== 0 && keySel !== 1) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `signing key ${keySel} is neither VCEK (0) nor VLEK (1)`, 'signing_key');
  // The signature field is 512 bytes: r (72) ‖ s (72) ‖ reserved (368, must be zero). Nothing
  // after byte 0x29F is signed, so unsigned bytes are accepted only in their one valid form.
  if (b.subarray(SIGNED_BYTES + 144).some((x) => x !== 0)) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', 'the reserved bytes after the signature are not zero', 'signature');
  const policy = leU64(b, 0x08);
  const h = (o: number, n: number): string => hex(b.subarray(o, o + n));
  return {
    version,
    guestSvn: leU32(b, 0x04),
    policy,
    familyId: h(0x10, 16),
    imageId: h(0x20, 16),
    vmpl: leU32(b, 0x30),
    signatureAlgo,
    currentTcb: tcbAt(b, 0x38),
    platformInfo: leU64(b, 0x40),
    signingKey: keySel === 0 ? 'vcek' : 'vlek',
    reportData: b.subarray(0x50, 0x90),
    measurement: h(0x90, 48),
    hostData: h(0xc0, 32),
    idKeyDigest: h(0xe0, 48),
    authorKeyDigest: h(0x110, 48),
    reportId: h(0x140, 32),
    reportedTcb: tcbAt(b, 0x180),
    cpuid: version >= 3 ? { family: b[0x188]!, model: b[0x189]!, stepping: b[0x18a]! } : undefined,
    chipId: b.subarray(0x1a0, 0x1e0),
    committedTcb: tcbAt(b, 0x1e0),
    launchTcb: tcbAt(b, 0x1f0),
    debug: (policy & (1n << 19n)) !== 0n,
    signature: b.subarray(SIGNED_BYTES, SIGNED_BYTES + 144),
  };
}

/** The 96-byte P1363 r‖s from the report's 72-byte little-endian fields (upper 24 bytes must be zero). */
function p1363(sig: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(96);
  for (const [i, off] of [[0, 0], [1, 72]] as const) {
    const le = sig.subarray(off, off + 72);
    if (le.subarray(48).some((x) => x !== 0)) return undefined;
    for (let k = 0; k < 48; k++) out[i * 48 + k] = le[47 - k]!;
  }
  return out;
}

const AMD_OID = '1.3.6.1.4.1.3704.1';

interface VekInfo {
  readonly product: string | undefined;
  readonly tcb: Partial<SnpTcb>;
  readonly hwId: Uint8Array | undefined;
}

function vekInfo(cert: X509Certificate): VekInfo {
  const ext = certificateExtensions(cert);
  const int = (oid: string): number | undefined => {
    const raw = ext.get(oid);
    return raw === undefined ? undefined : uintOf(readTlv(raw, 0, `VEK extension ${oid}`), `VEK extension ${oid}`);
  };
  let product: string | undefined;
  const pn = ext.get(`${AMD_OID}.2`);
  if (pn !== undefined) {
    const t = readTlv(pn, 0, 'VEK productName');
    if (t.tag !== TAG.IA5_STRING) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', 'VEK productName is not an IA5String', 'vek');
    product = Buffer.from(t.value).toString('latin1').split('-')[0];
  }
  const tcb: { -readonly [K in keyof SnpTcb]?: number } = {};
  const set = (k: keyof SnpTcb, oid: string): void => {
    const v = int(oid);
    if (v !== undefined) tcb[k] = v;
  };
  set('bootloader', `${AMD_OID}.3.1`);
  set('tee', `${AMD_OID}.3.2`);
  set('snp', `${AMD_OID}.3.3`);
  set('microcode', `${AMD_OID}.3.8`);
  return { product, tcb, hwId: ext.get(`${AMD_OID}.4`) };
}

function productFromCpuid(r: SnpReport): string | undefined {
  if (r.cpuid === undefined || r.cpuid.family !== 0x19) return undefined;
  if (r.cpuid.model <= 0x0f) return 'Milan';
  if (r.cpuid.model >= 0x10 && r.cpuid.model <= 0x1f) return 'Genoa';
  return undefined;
}

/** Options of {@link verifySnpReport}. */
export interface SnpVerifyOptions {
  readonly at: Date;
  readonly policy: AttestationPolicy;
  /** The VCEK or VLEK certificate that signed the report (from AMD KDS or the guest's certificate table). */
  readonly vek: X509Certificate;
  readonly anchors?: TrustAnchors;
}

/**
 * Verifies an SEV-SNP report at `at` under `policy`.
 *
 * @example
 * ```ts
 * const r = verifySnpReport(report, { at: new Date(), policy, vek: parseCertificateFile(vcekDer, '--vek') });
 * ```
 */
export function verifySnpReport(bytes: Uint8Array, opts: SnpVerifyOptions): AttestationResult {
  const { policy, at } = opts;
  const checks: AttestCheck[] = [];
  expectNoNonce(policy);
  expectKind('sev-snp', policy);
  const r = parseSnpReport(bytes);
  checks.push('parse');
  const info = vekInfo(opts.vek);
  const product = info.product ?? productFromCpuid(r) ?? policy.product;
  const keys = product === undefined ? undefined : (opts.anchors ?? defaultTrustAnchors()).amd[product];
  if (keys === undefined) throw attestError('CIPHERML_E_ATTESTATION_CHAIN', 'pinned-root', `no pinned AMD keys for product ${product ?? '(unknown: the VEK names none and the report has no CPUID)'}`, '--vek');
  expectOneOf(product!, policy.product === undefined ? undefined : [policy.product.toLowerCase()], 'product', 'product', 'AMD product');
  const intermediate = r.signingKey === 'vcek' ? keys.ask : keys.asvk;
  verifyChain([opts.vek, intermediate], [keys.ark], { field: `${r.signingKey.toUpperCase()} chain`, at });
  checks.push('pinned-root', 'certificate-chain', 'certificate-validity');
  for (const k of ['bootloader', 'tee', 'snp', 'microcode'] as const) {
    if (checkEnabled('vek-tcb-match') && info.tcb[k] !== r.reportedTcb[k]) {
      throw attestError('CIPHERML_E_ATTESTATION_CHAIN', 'vek-tcb-match', `the ${r.signingKey.toUpperCase()} certifies ${k} SPL ${info.tcb[k] ?? '(absent)'}, the report's REPORTED_TCB says ${r.reportedTcb[k]}`, 'reported_tcb');
    }
  }
  checks.push('vek-tcb-match');
  if (r.signingKey === 'vcek') {
    if (info.hwId === undefined || !bytesEqual(info.hwId, r.chipId)) throw attestError('CIPHERML_E_ATTESTATION_CHAIN', 'vek-chip-id', 'the VCEK was issued for another chip (hwID ≠ CHIP_ID)', 'chip_id');
    checks.push('vek-chip-id');
  }
  const sig = p1363(r.signature);
  if (checkEnabled('body-signature') && (sig === undefined || !verifyRawEcdsa('sha384', bytes.subarray(0, SIGNED_BYTES), opts.vek.publicKey, sig))) {
    throw attestError('CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature', `the report signature does not verify with the ${r.signingKey.toUpperCase()}`, 'signature');
  }
  checks.push('body-signature');
  expectNotDebug(r.debug, policy, 'guest policy DEBUG bit 19 is set');
  checks.push('debug');
  expectOneOf(r.measurement, policy.measurements, 'measurement', 'measurement', 'MEASUREMENT');
  checks.push('measurement');
  if (policy.minTcb !== undefined) {
    for (const k of ['bootloader', 'tee', 'snp', 'microcode'] as const) {
      if (r.reportedTcb[k] < policy.minTcb[k]) throw attestError('CIPHERML_E_ATTESTATION_TCB', 'min-tcb', `REPORTED_TCB ${k} is ${r.reportedTcb[k]}, below min-tcb.${k} ${policy.minTcb[k]}`, `min-tcb.${k}`);
    }
    checks.push('min-tcb');
  }
  if (policy.minSvn !== undefined && r.guestSvn < policy.minSvn) throw attestError('CIPHERML_E_ATTESTATION_TCB', 'min-svn', `GUEST_SVN is ${r.guestSvn}, below min-svn ${policy.minSvn}`, 'min-svn');
  expectReportData(r.reportData, policy, 'REPORT_DATA', true);
  if (policy.reportData !== undefined) checks.push('report-data');
  const t = (x: SnpTcb): string => `bl=${x.bootloader} tee=${x.tee} snp=${x.snp} ucode=${x.microcode}`;
  return {
    kind: 'sev-snp',
    verified: true,
    at: at.toISOString(),
    measurement: r.measurement,
    reportData: hex(r.reportData),
    debug: r.debug,
    securityVersions: { guest_svn: r.guestSvn, reported_tcb: t(r.reportedTcb), current_tcb: t(r.currentTcb), committed_tcb: t(r.committedTcb), launch_tcb: t(r.launchTcb) },
    tcbStatus: 'not-evaluated',
    advisoryIds: [],
    fields: {
      version: r.version, product: product!, signing_key: r.signingKey, policy: `0x${r.policy.toString(16)}`, vmpl: r.vmpl, host_data: r.hostData, family_id: r.familyId, image_id: r.imageId,
      id_key_digest: r.idKeyDigest, author_key_digest: r.authorKeyDigest, report_id: r.reportId, chip_id: hex(r.chipId), platform_info: `0x${r.platformInfo.toString(16)}`,
    },
    checks,
    simulation: false,
    isolation: 'hardware: AMD SEV-SNP',
  };
}
