import { attestError } from './fail.ts';

/**
 * A minimal strict DER walker (ITU-T X.690 §8.1: single-byte tags, definite lengths) for reading
 * extensions of certificates whose signatures were already verified. asn1js builds a full object
 * tree for a whole PCK certificate, which costs ~10 ms per quote; these reads need only
 * navigation. Every length is bounds-checked against the enclosing value.
 */

/** One tag-length-value element. */
export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte in the buffer it was read from. */
  readonly start: number;
  readonly value: Uint8Array;
  /** Offset just past this element in the buffer it was read from. */
  readonly end: number;
}

function bad(field: string, problem: string): never {
  throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field}: ${problem}`, field);
}

/** Reads the element starting at `off`. */
export function readTlv(b: Uint8Array, off: number, field: string): Tlv {
  if (off + 2 > b.length) bad(field, 'DER element truncated');
  const tag = b[off]!;
  if ((tag & 0x1f) === 0x1f) bad(field, 'multi-byte DER tags are not expected here');
  let len = b[off + 1]!;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > b.length) bad(field, 'bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!;
    p += n;
  }
  if (p + len > b.length) bad(field, 'DER length runs past the end');
  return { tag, start: off, value: b.subarray(p, p + len), end: p + len };
}

/** The elements of a constructed value, which they must fill exactly. */
export function children(value: Uint8Array, field: string): Tlv[] {
  const out: Tlv[] = [];
  let off = 0;
  while (off < value.length) {
    const t = readTlv(value, off, field);
    out.push(t);
    off = t.end;
  }
  return out;
}

/** Dotted form of an OBJECT IDENTIFIER's contents (X.690 §8.19). */
export function oidString(v: Uint8Array): string {
  const parts: number[] = [];
  let acc = 0;
  for (let i = 0; i < v.length; i++) {
    acc = acc * 128 + (v[i]! & 0x7f);
    if ((v[i]! & 0x80) === 0) {
      if (parts.length === 0) parts.push(acc < 80 ? Math.floor(acc / 40) : 2, acc < 80 ? acc % 40 : acc - 80);
      else parts.push(acc);
      acc = 0;
    }
  }
  return parts.join('.');
}

/** A non-negative INTEGER's contents as a number (at most 6 bytes). */
export function uintOf(t: Tlv, field: string): number {
  if (t.tag !== 0x02 || t.value.length === 0 || t.value.length > 7 || (t.value[0]! & 0x80) !== 0) bad(field, 'is not a small non-negative INTEGER');
  let n = 0;
  for (const x of t.value) n = n * 256 + x;
  return n;
}

export const TAG = { INTEGER: 0x02, OCTET_STRING: 0x04, OID: 0x06, IA5_STRING: 0x16, SEQUENCE: 0x30, EXPLICIT_3: 0xa3 } as const;

/**
 * The extensions of a DER certificate as OID → extnValue contents (RFC 5280 §4.1: Certificate →
 * tbsCertificate → [3] EXPLICIT Extensions → Extension { extnID, critical?, extnValue }).
 */
export function derCertificateExtensions(der: Uint8Array, field: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const cert = readTlv(der, 0, field);
  const tbs = children(cert.value, field)[0];
  if (cert.tag !== TAG.SEQUENCE || tbs?.tag !== TAG.SEQUENCE) bad(field, 'is not a certificate');
  const tagged = children(tbs.value, field).find((t) => t.tag === TAG.EXPLICIT_3);
  if (tagged === undefined) return out;
  const list = readTlv(tagged.value, 0, field);
  if (list.tag !== TAG.SEQUENCE) bad(field, 'extensions are not a SEQUENCE');
  for (const ext of children(list.value, field)) {
    const parts = children(ext.value, field);
    const oid = parts[0];
    const value = parts[parts.length - 1];
    if (ext.tag !== TAG.SEQUENCE || oid?.tag !== TAG.OID || value?.tag !== TAG.OCTET_STRING) bad(field, 'an extension is not (OID, [critical], OCTET STRING)');
    out.set(oidString(oid.value), value.value);
  }
  return out;
}

const ECDSA_HASH: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/**
 * The parts of an ECDSA-signed certificate needed to check its signature (RFC 5280 §4.1.1):
 * the exact tbsCertificate bytes, the hash of its ecdsa-with-SHA* algorithm and the DER
 * signature; undefined for any other signature algorithm.
 */
export function ecdsaSignedParts(der: Uint8Array, field: string): { tbs: Uint8Array; hash: string; signature: Uint8Array } | undefined {
  const cert = readTlv(der, 0, field);
  const [tbs, alg, sig] = children(cert.value, field);
  if (cert.tag !== TAG.SEQUENCE || tbs?.tag !== TAG.SEQUENCE || alg?.tag !== TAG.SEQUENCE || sig?.tag !== 0x03) bad(field, 'is not a certificate');
  const oid = children(alg.value, field)[0];
  const hash = oid?.tag === TAG.OID ? ECDSA_HASH[oidString(oid.value)] : undefined;
  if (hash === undefined || sig.value[0] !== 0) return undefined;
  // tbsCertificate.signature must equal signatureAlgorithm (RFC 5280 §4.1.1.2).
  const fields = children(tbs.value, field);
  const inner = fields[fields[0]?.tag === 0xa0 ? 2 : 1];
  const outerAlg = cert.value.subarray(alg.start, alg.end);
  if (inner === undefined || !Buffer.from(tbs.value.subarray(inner.start, inner.end)).equals(Buffer.from(outerAlg))) bad(field, 'the signature algorithm inside the certificate differs from the outer one');
  return { tbs: cert.value.subarray(tbs.start, tbs.end), hash, signature: sig.value.subarray(1) };
}
