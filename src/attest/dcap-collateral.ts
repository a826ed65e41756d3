import type { X509Certificate } from 'node:crypto';
import { attestError } from './fail.ts';
import { parseCrl, parsePemChain, type ParsedCrl } from './x509.ts';

/**
 * Intel PCS collateral for DCAP quotes: TCB info and QE identity (each an Intel-signed JSON
 * object, signature ECDSA P-256 over the exact bytes of the inner object as served — Intel PCS
 * API v4, "Get TCB Info" / "Get Quoting Enclave Identity"), and the root and PCK CRLs.
 */

/** One signed JSON item: the exact signed bytes, the raw r‖s signature and the signer's chain. */
export interface SignedCollateralItem {
  readonly body: Uint8Array;
  readonly signature: Uint8Array;
  readonly issuerChain: readonly X509Certificate[];
}

/** Collateral for one DCAP quote. CRLs are optional; the policy decides whether they must be present. */
export interface DcapCollateral {
  readonly tcbInfo: SignedCollateralItem;
  readonly qeIdentity: SignedCollateralItem;
  readonly rootCrl: ParsedCrl | undefined;
  readonly pckCrl: ParsedCrl | undefined;
}

/** Largest collateral item accepted (real TCB info is < 20 KB). */
const MAX_ITEM = 256 * 1024;

function hexBytes(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string' || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v) || v.length > 2 * MAX_ITEM) {
    throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', `${field} must be a hex string`, field);
  }
  return Buffer.from(v, 'hex');
}

function text(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ITEM) throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', `${field} must be a non-empty string`, field);
  return v;
}

/**
 * Reads a collateral bundle in the JSON shape Phala-Network/dcap-qvl uses (`tcb_info`,
 * `tcb_info_signature`, `tcb_info_issuer_chain`, `qe_identity`, `qe_identity_signature`,
 * `qe_identity_issuer_chain`, `root_ca_crl` and `pck_crl` as hex DER).
 *
 * @example
 * ```ts
 * const c = parseDcapCollateralJson(JSON.parse(await readFile('collateral.json', 'utf8')), 'collateral.json');
 * ```
 */
export function parseDcapCollateralJson(value: unknown, source: string): DcapCollateral {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', `${source} must be a JSON object`, source);
  const o = value as Record<string, unknown>;
  const item = (body: string, sig: string, chain: string): SignedCollateralItem => ({
    body: Buffer.from(text(o[body], `${source}: ${body}`), 'utf8'),
    signature: hexBytes(o[sig], `${source}: ${sig}`),
    issuerChain: parsePemChain(text(o[chain], `${source}: ${chain}`), `${source}: ${chain}`),
  });
  return {
    tcbInfo: item('tcb_info', 'tcb_info_signature', 'tcb_info_issuer_chain'),
    qeIdentity: item('qe_identity', 'qe_identity_signature', 'qe_identity_issuer_chain'),
    rootCrl: o['root_ca_crl'] === undefined ? undefined : parseCrl(hexBytes(o['root_ca_crl'], `${source}: root_ca_crl`), `${source}: root_ca_crl`),
    pckCrl: o['pck_crl'] === undefined ? undefined : parseCrl(hexBytes(o['pck_crl'], `${source}: pck_crl`), `${source}: pck_crl`),
  };
}

/**
 * The exact bytes of the value of top-level `key` in a PCS response body, and the response's
 * `signature`. Intel signs those bytes as served, so they are cut out, never re-serialised.
 */
export function signedJsonMember(response: string, key: string, source: string): { body: Uint8Array; signature: Uint8Array } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(response);
  } catch (e) {
    throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', `${source} is not JSON`, source, e);
  }
  const sig = (parsed as Record<string, unknown> | null)?.['signature'];
  const m = new RegExp(`^\\s*\\{\\s*"${key}"\\s*:\\s*`).exec(response) ?? new RegExp(`,\\s*"${key}"\\s*:\\s*`).exec(response);
  if (m === null || typeof parsed !== 'object' || parsed === null || !(key in parsed)) throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', `${source} has no "${key}" member`, source);
  const start = m.index + m[0].length;
  let depth = 0;
  let inString = false;
  let end = -1;
  for (let i = start; i < response.length; i++) {
    const c = response[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) {
        end = i + 1;
        break;
      }
    }
  }
  if (end < 0 || response[start] !== '{') throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', `${source}: "${key}" is not an object`, source);
  return { body: Buffer.from(response.slice(start, end), 'utf8'), signature: hexBytes(sig, `${source}: signature`) };
}

/** The parts of PCS responses as served over HTTP (body + issuer-chain header, URL-decoded). */
export interface PcsCollateralParts {
  readonly tcbInfoResponse: string;
  readonly tcbInfoIssuerChain: string;
  readonly qeIdentityResponse: string;
  readonly qeIdentityIssuerChain: string;
  readonly rootCrl?: Uint8Array;
  readonly pckCrl?: Uint8Array;
}

/**
 * Builds collateral from Intel PCS responses (`/tcb`, `/qe/identity`, `/pckcrl`, root CRL).
 *
 * @example
 * ```ts
 * const c = dcapCollateralFromPcs({ tcbInfoResponse, tcbInfoIssuerChain, qeIdentityResponse, qeIdentityIssuerChain });
 * ```
 */
export function dcapCollateralFromPcs(parts: PcsCollateralParts): DcapCollateral {
  const t = signedJsonMember(parts.tcbInfoResponse, 'tcbInfo', 'TCB info response');
  const q = signedJsonMember(parts.qeIdentityResponse, 'enclaveIdentity', 'QE identity response');
  return {
    tcbInfo: { ...t, issuerChain: parsePemChain(parts.tcbInfoIssuerChain, 'TCB info issuer chain') },
    qeIdentity: { ...q, issuerChain: parsePemChain(parts.qeIdentityIssuerChain, 'QE identity issuer chain') },
    rootCrl: parts.rootCrl === undefined ? undefined : parseCrl(parts.rootCrl, 'root CA CRL'),
    pckCrl: parts.pckCrl === undefined ? undefined : parseCrl(parts.pckCrl, 'PCK CRL'),
  };
}

// ---- typed views of the signed JSON (Intel PCS API v4 TCB info v2/v3, enclave identity v2)

/** One TCB level of a TCB info: the component SVNs at which `tcbStatus` applies. */
export interface TcbLevel {
  readonly sgxComponents: readonly number[];
  readonly tdxComponents: readonly number[] | undefined;
  readonly pceSvn: number;
  readonly status: string;
  readonly advisoryIds: readonly string[];
}

export interface TcbInfo {
  readonly id: string | undefined;
  readonly fmspc: string;
  readonly pceId: string;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  readonly tdxModuleMrSigner: string | undefined;
  readonly levels: readonly TcbLevel[];
}

export interface QeIdentity {
  readonly id: string;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  readonly miscSelect: number;
  readonly miscSelectMask: number;
  readonly attributes: string;
  readonly attributesMask: string;
  readonly mrSigner: string;
  readonly isvProdId: number;
  readonly levels: readonly { readonly isvSvn: number; readonly status: string; readonly advisoryIds: readonly string[] }[];
}

function bad(field: string, problem: string): never {
  throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', `${field} ${problem}`, field);
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(field, 'must be an object');
  return v as Record<string, unknown>;
}

function num(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad(field, 'must be a non-negative integer');
  return v as number;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string') bad(field, 'must be a string');
  return v as string;
}

function date(v: unknown, field: string): Date {
  const d = new Date(str(v, field));
  if (Number.isNaN(d.getTime())) bad(field, 'must be an ISO date');
  return d;
}

function arr(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) bad(field, 'must be an array');
  return v as unknown[];
}

function svns(v: unknown, field: string): number[] {
  const a = arr(v, field);
  if (a.length !== 16) bad(field, `must list 16 components, has ${a.length}`);
  return a.map((c, i) => num(obj(c, `${field}[${i}]`)['svn'], `${field}[${i}].svn`));
}

/** Parses a (signature-checked) TCB info body. */
export function parseTcbInfo(body: Uint8Array): TcbInfo {
  let j: unknown;
  try {
    j = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (e) {
    throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', 'tcbInfo is not JSON', 'tcbInfo', e);
  }
  const t = obj(j, 'tcbInfo');
  const levels = arr(t['tcbLevels'], 'tcbInfo.tcbLevels').map((lv, i): TcbLevel => {
    const f = `tcbInfo.tcbLevels[${i}]`;
    const l = obj(lv, f);
    const tcb = obj(l['tcb'], `${f}.tcb`);
    const sgx = tcb['sgxtcbcomponents'] !== undefined ? svns(tcb['sgxtcbcomponents'], `${f}.tcb.sgxtcbcomponents`) : Array.from({ length: 16 }, (_, k) => num(tcb[`sgxtcbcomp${String(k + 1).padStart(2, '0')}svn`], `${f}.tcb.sgxtcbcomp${k + 1}svn`));
    return {
      sgxComponents: sgx,
      tdxComponents: tcb['tdxtcbcomponents'] === undefined ? undefined : svns(tcb['tdxtcbcomponents'], `${f}.tcb.tdxtcbcomponents`),
      pceSvn: num(tcb['pcesvn'], `${f}.tcb.pcesvn`),
      status: str(l['tcbStatus'], `${f}.tcbStatus`),
      advisoryIds: l['advisoryIDs'] === undefined ? [] : arr(l['advisoryIDs'], `${f}.advisoryIDs`).map((a, k) => str(a, `${f}.advisoryIDs[${k}]`)),
    };
  });
  const mod = t['tdxModule'] === undefined ? undefined : obj(t['tdxModule'], 'tcbInfo.tdxModule');
  return {
    id: t['id'] === undefined ? undefined : str(t['id'], 'tcbInfo.id'),
    fmspc: str(t['fmspc'], 'tcbInfo.fmspc').toLowerCase(),
    pceId: str(t['pceId'], 'tcbInfo.pceId').toLowerCase(),
    issueDate: date(t['issueDate'], 'tcbInfo.issueDate'),
    nextUpdate: date(t['nextUpdate'], 'tcbInfo.nextUpdate'),
    tdxModuleMrSigner: mod === undefined ? undefined : str(mod['mrsigner'], 'tcbInfo.tdxModule.mrsigner').toLowerCase(),
    levels,
  };
}

/** Parses a (signature-checked) QE identity body. */
export function parseQeIdentity(body: Uint8Array): QeIdentity {
  let j: unknown;
  try {
    j = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (e) {
    throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present', 'enclaveIdentity is not JSON', 'enclaveIdentity', e);
  }
  const q = obj(j, 'enclaveIdentity');
  const hexNum = (v: unknown, f: string): number => {
    const s = str(v, f);
    if (!/^[0-9a-fA-F]{1,8}$/.test(s)) bad(f, 'must be hex');
    return Number.parseInt(s, 16) >>> 0;
  };
  return {
    id: str(q['id'], 'enclaveIdentity.id'),
    issueDate: date(q['issueDate'], 'enclaveIdentity.issueDate'),
    nextUpdate: date(q['nextUpdate'], 'enclaveIdentity.nextUpdate'),
    miscSelect: hexNum(q['miscselect'], 'enclaveIdentity.miscselect'),
    miscSelectMask: hexNum(q['miscselectMask'], 'enclaveIdentity.miscselectMask'),
    attributes: str(q['attributes'], 'enclaveIdentity.attributes').toLowerCase(),
    attributesMask: str(q['attributesMask'], 'enclaveIdentity.attributesMask').toLowerCase(),
    mrSigner: str(q['mrsigner'], 'enclaveIdentity.mrsigner').toLowerCase(),
    isvProdId: num(q['isvprodid'], 'enclaveIdentity.isvprodid'),
    levels: arr(q['tcbLevels'], 'enclaveIdentity.tcbLevels').map((lv, i) => {
      const l = obj(lv, `enclaveIdentity.tcbLevels[${i}]`);
      return {
        isvSvn: num(obj(l['tcb'], `enclaveIdentity.tcbLevels[${i}].tcb`)['isvsvn'], `enclaveIdentity.tcbLevels[${i}].tcb.isvsvn`),
        status: str(l['tcbStatus'], `enclaveIdentity.tcbLevels[${i}].tcbStatus`),
        advisoryIds: l['advisoryIDs'] === undefined ? [] : arr(l['advisoryIDs'], 'advisoryIDs').map((a) => str(a, 'advisoryIDs')),
      };
    }),
  };
}
