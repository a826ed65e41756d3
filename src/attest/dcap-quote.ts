import { attestError, hex } from './fail.ts';
import { FieldReader, leU16, leU32 } from './reader.ts';

/**
 * Intel DCAP ECDSA quotes: SGX v3 and TDX v4/v5 (Intel "SGX ECDSA Quote Library API" §A.4 for
 * v3; "TDX DCAP Quoting Library API" §A.3 for v4 and §A.3.2 for the v5 body descriptor). All
 * integers little-endian. The signed region is the header plus the report body (v5: plus the
 * 6-byte body descriptor); the signature data that follows must account for every byte it
 * declares, exactly. Bytes after the signature data are tolerated and counted, as Intel's QVL and
 * the source verifiers do.
 */

/** Largest quote accepted (real quotes are ~5 KB; the bound keeps memory independent of input). */
export const MAX_QUOTE_BYTES: number = 64 * 1024;

export const TEE_TYPE_SGX = 0x00000000;
export const TEE_TYPE_TDX = 0x00000081;
/** Attestation key type 2: ECDSA-256-with-P-256 curve. */
export const ATT_KEY_ECDSA_P256 = 2;
/** Certification data type 5: PCK certificate chain, PEM (leaf ‖ intermediate ‖ root). */
export const CERT_DATA_PCK_CHAIN = 5;
/** Certification data type 6: QE report certification data (TDX and v4+). */
export const CERT_DATA_QE_REPORT = 6;

/** An SGX REPORT body (384 bytes; Intel SDM Vol. 3D §38.15). */
export interface SgxReportBody {
  readonly cpuSvn: string;
  readonly miscSelect: number;
  readonly attributes: string;
  readonly mrEnclave: string;
  readonly mrSigner: string;
  readonly configId: string;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly configSvn: number;
  readonly isvFamilyId: string;
  readonly reportData: Uint8Array;
  /** attributes.flags bit 1: the enclave was launched in debug mode. */
  readonly debug: boolean;
}

/** A TDX TD report body (584 bytes; TD 1.5 adds 64). */
export interface TdReportBody {
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: string;
  readonly mrSignerSeam: string;
  readonly seamAttributes: string;
  readonly tdAttributes: string;
  readonly xfam: string;
  readonly mrTd: string;
  readonly mrConfigId: string;
  readonly mrOwner: string;
  readonly mrOwnerConfig: string;
  readonly rtmr: readonly [string, string, string, string];
  readonly reportData: Uint8Array;
  readonly teeTcbSvn2?: string;
  readonly mrServiceTd?: string;
  /** td_attributes bit 0 (DEBUG): the TD runs in debug mode, its memory readable by the host VMM. */
  readonly debug: boolean;
}

/** A parsed DCAP quote; byte fields are views of the input. */
export interface DcapQuote {
  readonly version: number;
  readonly attestationKeyType: number;
  readonly teeType: number;
  readonly qeSvn: number;
  readonly pceSvn: number;
  readonly qeVendorId: string;
  readonly userData: string;
  /** 1 = SGX enclave, 2 = TD 1.0, 3 = TD 1.5 (v5 descriptor; derived from the tee type before v5). */
  readonly bodyType: 1 | 2 | 3;
  readonly sgx: SgxReportBody | undefined;
  readonly td: TdReportBody | undefined;
  readonly signedRegion: Uint8Array;
  readonly signature: Uint8Array;
  readonly attestationKey: Uint8Array;
  readonly qeReport: Uint8Array;
  readonly qeReportBody: SgxReportBody;
  readonly qeReportSignature: Uint8Array;
  readonly qeAuthData: Uint8Array;
  readonly pckChainPem: Uint8Array;
  readonly trailingBytes: number;
}

/** Parses a 384-byte SGX report body. */
export function parseSgxReportBody(b: Uint8Array): SgxReportBody {
  const h = (o: number, n: number): string => hex(b.subarray(o, o + n));
  return {
    cpuSvn: h(0, 16),
    miscSelect: leU32(b, 16),
    attributes: h(48, 16),
    mrEnclave: h(64, 32),
    mrSigner: h(128, 32),
    configId: h(192, 64),
    isvProdId: leU16(b, 256),
    isvSvn: leU16(b, 258),
    configSvn: leU16(b, 260),
    isvFamilyId: h(304, 16),
    reportData: b.subarray(320, 384),
    debug: (b[48]! & 0x02) !== 0,
  };
}

/** Parses a TD report body (584 or 648 bytes). */
export function parseTdReportBody(b: Uint8Array): TdReportBody {
  const h = (o: number, n: number): string => hex(b.subarray(o, o + n));
  return {
    teeTcbSvn: b.subarray(0, 16),
    mrSeam: h(16, 48),
    mrSignerSeam: h(64, 48),
    seamAttributes: h(112, 8),
    tdAttributes: h(120, 8),
    xfam: h(128, 8),
    mrTd: h(136, 48),
    mrConfigId: h(184, 48),
    mrOwner: h(232, 48),
    mrOwnerConfig: h(280, 48),
    rtmr: [h(328, 48), h(376, 48), h(424, 48), h(472, 48)],
    reportData: b.subarray(520, 584),
    ...(b.length >= 648 ? { teeTcbSvn2: h(584, 16), mrServiceTd: h(600, 48) } : {}),
    debug: (b[120]! & 0x01) !== 0,
  };
}

const BODY_SIZE = { 1: 384, 2: 584, 3: 648 } as const;

/**
 * Parses an SGX (v3/v4) or TDX (v4/v5) ECDSA quote strictly: every declared length must match
 * the bytes present; unsupported versions, key types and certification data types are refused.
 *
 * @example
 * ```ts
 * const q = parseDcapQuote(await readFile('quote.dat'));
 * console.log(q.sgx?.mrEnclave ?? q.td?.mrTd);
 * ```
 */
export function parseDcapQuote(bytes: Uint8Array): DcapQuote {
  const what = 'quote';
  if (bytes.length > MAX_QUOTE_BYTES) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `the quote is ${bytes.length} bytes, more than the ${MAX_QUOTE_BYTES} a DCAP quote can be`, 'quote');
  const r = new FieldReader(bytes, what);
  const version = r.u16('header.version');
  const attestationKeyType = r.u16('header.attestation_key_type');
  const teeType = r.u32('header.tee_type');
  const qeSvn = r.u16('header.qe_svn');
  const pceSvn = r.u16('header.pce_svn');
  const qeVendorId = hex(r.take(16, 'header.qe_vendor_id'));
  const userData = hex(r.take(20, 'header.user_data'));
  const unsupported = (field: string, problem: string): never => {
    throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', problem, field);
  };
  if (teeType !== TEE_TYPE_SGX && teeType !== TEE_TYPE_TDX) unsupported('header.tee_type', `tee type 0x${teeType.toString(16)} is neither SGX (0x0) nor TDX (0x81)`);
  let bodyType: 1 | 2 | 3;
  if (version === 3) {
    if (teeType !== TEE_TYPE_SGX) unsupported('header.version', 'quote format not supported: version 3 quotes are SGX only, but the tee type is TDX');
    bodyType = 1;
  } else if (version === 4) {
    bodyType = teeType === TEE_TYPE_TDX ? 2 : 1;
  } else if (version === 5) {
    const t = r.u16('body.type');
    if (t !== 1 && t !== 2 && t !== 3) unsupported('body.type', `quote v5 body type ${t} is not 1 (SGX), 2 (TD 1.0) or 3 (TD 1.5)`);
    bodyType = t as 1 | 2 | 3;
    const size = r.u32('body.size');
    if (size !== BODY_SIZE[bodyType]) unsupported('body.size', `quote v5 body of type ${bodyType} must be ${BODY_SIZE[bodyType]} bytes, the descriptor says ${size}`);
    if ((bodyType === 1) !== (teeType === TEE_TYPE_SGX)) unsupported('body.type', `quote v5 body type ${bodyType} does not match tee type 0x${teeType.toString(16)}`);
  } else {
    return unsupported('header.version', `quote format not supported: version ${version} (supported: 3, 4, 5)`);
  }
  if (attestationKeyType !== ATT_KEY_ECDSA_P256) unsupported('header.attestation_key_type', `attestation key type ${attestationKeyType} is not supported (only 2, ECDSA P-256)`);
  const body = r.take(BODY_SIZE[bodyType], 'body');
  const signedRegion = bytes.subarray(0, r.offset);
  const sigLen = r.u32('signature_data_len');
  const sigStart = r.offset;
  r.take(sigLen, 'signature_data');
  const s = new FieldReader(bytes, what, sigStart, sigStart + sigLen);
  const signature = s.take(64, 'signature');
  const attestationKey = s.take(64, 'attestation_key');
  let inner: FieldReader = s;
  if (version !== 3) {
    const outerType = s.u16('certification_data.type');
    if (outerType !== CERT_DATA_QE_REPORT) unsupported('certification_data.type', `certification data type ${outerType} is not supported here (expected 6, QE report certification data)`);
    const outerSize = s.u32('certification_data.size');
    const start = s.offset;
    s.take(outerSize, 'certification_data');
    if (s.remaining !== 0) unsupported('signature_data_len', `signature data declares ${sigLen} bytes but its certification data ends ${s.remaining} bytes earlier`);
    inner = new FieldReader(bytes, what, start, start + outerSize);
  }
  const qeReport = inner.take(384, 'qe_report');
  const qeReportSignature = inner.take(64, 'qe_report_signature');
  const authLen = inner.u16('qe_auth_data.size');
  const qeAuthData = inner.take(authLen, 'qe_auth_data');
  const certType = inner.u16('pck_certification_data.type');
  if (certType !== CERT_DATA_PCK_CHAIN) unsupported('pck_certification_data.type', `certification data type ${certType} is not supported (only 5, a PEM PCK certificate chain)`);
  const certSize = inner.u32('pck_certification_data.size');
  const pckChainPem = inner.take(certSize, 'pck_certification_data');
  if (inner.remaining !== 0) unsupported(version === 3 ? 'signature_data_len' : 'certification_data.size', `the declared size leaves ${inner.remaining} bytes after the PCK certification data`);
  return {
    version,
    attestationKeyType,
    teeType,
    qeSvn,
    pceSvn,
    qeVendorId,
    userData,
    bodyType,
    sgx: bodyType === 1 ? parseSgxReportBody(body) : undefined,
    td: bodyType === 1 ? undefined : parseTdReportBody(body),
    signedRegion,
    signature,
    attestationKey,
    qeReport,
    qeReportBody: parseSgxReportBody(qeReport),
    qeReportSignature,
    qeAuthData,
    pckChainPem,
    trailingBytes: bytes.length - r.offset,
  };
}
