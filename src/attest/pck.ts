import type { X509Certificate } from 'node:crypto';
import { children, oidString, readTlv, TAG, uintOf, type Tlv } from './der.ts';
import { attestError, hex } from './fail.ts';
import { certificateExtensions } from './x509.ts';

/**
 * Intel SGX PCK certificate extensions (Intel "SGX PCK Certificate and CRL Profile" §1.3.5,
 * OID 1.2.840.113741.1.13.1): the platform's FMSPC, PCE id and the TCB it was certified at.
 */
export interface PckExtensions {
  readonly fmspc: string;
  readonly pceId: string;
  /** SGX TCB components 1..16 (CPUSVN components). */
  readonly sgxTcbComponents: readonly number[];
  readonly pceSvn: number;
  readonly cpuSvn: string;
}

const SGX_EXT = '1.2.840.113741.1.13.1';

function entries(value: Uint8Array, field: string): [string, Tlv][] {
  return children(value, field).map((item) => {
    const [o, v] = children(item.value, field);
    if (item.tag !== TAG.SEQUENCE || o?.tag !== TAG.OID || v === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} entry is not (OID, value)`, field);
    return [oidString(o.value), v];
  });
}

function octets(v: Tlv, field: string): Uint8Array {
  if (v.tag !== TAG.OCTET_STRING) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} is not an OCTET STRING`, field);
  return v.value;
}

/** Reads the SGX extension of a PCK certificate (after its chain was verified). */
export function pckExtensions(pck: X509Certificate): PckExtensions {
  const field = 'PCK certificate SGX extension';
  const raw = certificateExtensions(pck).get(SGX_EXT);
  if (raw === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', 'the PCK certificate has no SGX extension (1.2.840.113741.1.13.1)', field);
  const top = readTlv(raw, 0, field);
  if (top.end !== raw.length || top.tag !== TAG.SEQUENCE) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} is not one SEQUENCE`, field);
  let fmspc: string | undefined;
  let pceId: string | undefined;
  let comps: number[] | undefined;
  let pceSvn: number | undefined;
  let cpuSvn: string | undefined;
  for (const [oid, v] of entries(top.value, field)) {
    if (oid === `${SGX_EXT}.4`) fmspc = hex(octets(v, 'fmspc'));
    else if (oid === `${SGX_EXT}.3`) pceId = hex(octets(v, 'pceid'));
    else if (oid === `${SGX_EXT}.2`) {
      const byOid = new Map(entries(v.value, 'tcb'));
      comps = [];
      for (let k = 1; k <= 16; k++) {
        const c = byOid.get(`${SGX_EXT}.2.${k}`);
        if (c === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} lacks TCB component ${k}`, field);
        comps.push(uintOf(c, `sgxtcbcomp${k}`));
      }
      const p = byOid.get(`${SGX_EXT}.2.17`);
      const c = byOid.get(`${SGX_EXT}.2.18`);
      if (p === undefined || c === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} lacks pcesvn or cpusvn`, field);
      pceSvn = uintOf(p, 'pcesvn');
      cpuSvn = hex(octets(c, 'cpusvn'));
    }
  }
  if (fmspc === undefined || pceId === undefined || comps === undefined || pceSvn === undefined || cpuSvn === undefined) {
    throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} lacks one of fmspc, pceid, tcb`, field);
  }
  return { fmspc, pceId, sgxTcbComponents: comps, pceSvn, cpuSvn };
}
