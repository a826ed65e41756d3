import type { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
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

function seqItems(node: asn1js.AsnType | undefined, field: string): asn1js.AsnType[] {
  if (!(node instanceof asn1js.Sequence)) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} is not an ASN.1 SEQUENCE`, field);
  return node.valueBlock.value;
}

function oidValue(item: asn1js.AsnType, field: string): [string, asn1js.AsnType] {
  const [o, v] = seqItems(item, field);
  if (!(o instanceof asn1js.ObjectIdentifier) || v === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} entry is not (OID, value)`, field);
  return [o.valueBlock.toString(), v];
}

function intOf(v: asn1js.AsnType, field: string): number {
  if (v instanceof asn1js.Integer) return v.valueBlock.valueDec;
  if (v instanceof asn1js.Enumerated) return v.valueBlock.valueDec;
  throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} is not an INTEGER`, field);
}

function octets(v: asn1js.AsnType, field: string): Uint8Array {
  if (v instanceof asn1js.OctetString) return new Uint8Array(v.valueBlock.valueHexView);
  throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} is not an OCTET STRING`, field);
}

/** Reads the SGX extension of a PCK certificate. */
export function pckExtensions(pck: X509Certificate): PckExtensions {
  const field = 'PCK certificate SGX extension';
  const raw = certificateExtensions(pck).get(SGX_EXT);
  if (raw === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', 'the PCK certificate has no SGX extension (1.2.840.113741.1.13.1)', field);
  const asn = asn1js.fromBER(raw);
  if (asn.offset !== raw.length) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} has trailing bytes`, field);
  let fmspc: string | undefined;
  let pceId: string | undefined;
  let comps: number[] | undefined;
  let pceSvn: number | undefined;
  let cpuSvn: string | undefined;
  for (const item of seqItems(asn.result, field)) {
    const [oid, v] = oidValue(item, field);
    if (oid === `${SGX_EXT}.4`) fmspc = hex(octets(v, 'fmspc'));
    else if (oid === `${SGX_EXT}.3`) pceId = hex(octets(v, 'pceid'));
    else if (oid === `${SGX_EXT}.2`) {
      const byOid = new Map<string, asn1js.AsnType>();
      for (const sub of seqItems(v, 'tcb')) {
        const [so, sv] = oidValue(sub, 'tcb');
        byOid.set(so, sv);
      }
      comps = [];
      for (let k = 1; k <= 16; k++) {
        const c = byOid.get(`${SGX_EXT}.2.${k}`);
        if (c === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} lacks TCB component ${k}`, field);
        comps.push(intOf(c, `sgxtcbcomp${k}`));
      }
      const p = byOid.get(`${SGX_EXT}.2.17`);
      const c = byOid.get(`${SGX_EXT}.2.18`);
      if (p === undefined || c === undefined) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} lacks pcesvn or cpusvn`, field);
      pceSvn = intOf(p, 'pcesvn');
      cpuSvn = hex(octets(c, 'cpusvn'));
    }
  }
  if (fmspc === undefined || pceId === undefined || comps === undefined || pceSvn === undefined || cpuSvn === undefined) {
    throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} lacks one of fmspc, pceid, tcb`, field);
  }
  return { fmspc, pceId, sgxTcbComponents: comps, pceSvn, cpuSvn };
}
