import { X509Certificate, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import { derCertificateExtensions, ecdsaSignedParts } from './der.ts';
import { attestError, bytesEqual, checkEnabled, hex } from './fail.ts';

/**
 * X.509 for attestation: parsing with `@peculiar/asn1-x509` (extensions, CRLs), signature and
 * name checks with node:crypto's OpenSSL-backed `X509Certificate` (which verifies ECDSA, RSA
 * PKCS#1 v1.5 and RSASSA-PSS certificate signatures, and accepts the serial number 0 that every
 * AMD VCEK/VLEK carries, RFC 5280 §4.1.2.2 notwithstanding).
 */

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

/** Most certificates a chain in any supported document may hold. */
export const MAX_CHAIN_CERTS = 8;

/**
 * Parses a PEM certificate chain strictly: the text (after trailing NUL padding) must be nothing
 * but complete BEGIN/END blocks and whitespace, so a broken marker or stray byte is refused
 * rather than skipped.
 *
 * @example
 * ```ts
 * const [pck, intermediate, root] = parsePemChain(certData, 'quote certification data');
 * ```
 */
export function parsePemChain(data: Uint8Array | string, field: string): X509Certificate[] {
  let text = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  text = text.replace(/\0+$/, '');
  const certs: X509Certificate[] = [];
  let rest = text;
  for (const m of text.matchAll(PEM_BLOCK)) {
    rest = rest.replace(m[0], '');
    if (certs.length >= MAX_CHAIN_CERTS) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} holds more than ${MAX_CHAIN_CERTS} certificates`, field);
    certs.push(parseDerCertificate(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'), field));
  }
  if (rest.trim() !== '' || certs.length === 0) {
    throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} is not a sequence of complete PEM certificates (a BEGIN/END marker is broken or stray bytes are present)`, field);
  }
  return certs;
}

/** Parses one DER certificate, refusing trailing bytes. */
export function parseDerCertificate(der: Uint8Array, field: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
    // OpenSSL decodes the public key lazily; decode it now so a corrupt key is a parse refusal.
    void cert.publicKey;
  } catch (e) {
    throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} is not a DER X.509 certificate`, field, e);
  }
  if (cert.raw.length !== der.length) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} has ${der.length - cert.raw.length} bytes after the certificate`, field);
  return cert;
}

/** Reads a certificate file: PEM (first block) or DER. */
export function parseCertificateFile(data: Uint8Array, field: string): X509Certificate {
  const head = Buffer.from(data.subarray(0, 11)).toString('latin1');
  if (head === '-----BEGIN ') {
    const chain = parsePemChain(data, field);
    if (chain.length !== 1) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} holds ${chain.length} certificates, expected one`, field);
    return chain[0]!;
  }
  return parseDerCertificate(data, field);
}

/** The extensions of a certificate as OID → extnValue bytes (the OCTET STRING contents). */
export function certificateExtensions(cert: X509Certificate): Map<string, Uint8Array> {
  return derCertificateExtensions(cert.raw, 'certificate');
}

function subjectCn(cert: X509Certificate): string {
  const m = /CN=([^\n]+)/.exec(cert.subject);
  return m?.[1] ?? cert.subject.replace(/\n/g, ', ');
}

/** Whether `child` carries a valid signature by `issuer`'s key (any OpenSSL failure counts as no). */
function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    // ECDSA-signed certificates (Intel, AWS) are checked with one node:crypto verify over the
    // exact tbsCertificate bytes: X509Certificate.verify costs about twice as much. RSA-PSS
    // (AMD) goes through OpenSSL's certificate verification, which reads the PSS parameters.
    if (issuer.publicKey.asymmetricKeyType === 'ec') {
      const p = ecdsaSignedParts(child.raw, 'certificate');
      if (p !== undefined) return cryptoVerify(p.hash, p.tbs, issuer.publicKey, p.signature);
    }
    return child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Where a chain check is reported (the document field or collateral item it came from). */
export interface ChainContext {
  readonly field: string;
  readonly at: Date;
}

/**
 * Verifies `chain` (leaf first) up to one of the pinned `anchors`: the last certificate is either
 * an anchor itself (byte-equal) or is signed by one. Every link is checked by issuer name and
 * signature, every issuing certificate must be a CA, the anchor's self-signature is checked, and
 * every certificate must be valid at `ctx.at` (notBefore ≤ at ≤ notAfter, RFC 5280 §4.1.2.5).
 * Returns the full path, anchor last.
 *
 * @example
 * ```ts
 * const path = verifyChain([pck, platformCa], [INTEL_SGX_ROOT], { field: 'PCK chain', at });
 * ```
 */
export function verifyChain(chain: readonly X509Certificate[], anchors: readonly X509Certificate[], ctx: ChainContext): X509Certificate[] {
  if (chain.length === 0) throw attestError('CIPHERML_E_ATTESTATION_CHAIN', 'certificate-chain', `${ctx.field} is empty`, ctx.field);
  const path = [...chain];
  const top = path[path.length - 1]!;
  const pinned = anchors.find((a) => bytesEqual(a.raw, top.raw));
  if (pinned === undefined && checkEnabled('pinned-root')) {
    const issuer = anchors.find((a) => top.checkIssued(a) && signedBy(top, a));
    if (issuer === undefined) {
      const selfSigned = top.checkIssued(top);
      throw attestError('CIPHERML_E_ATTESTATION_CHAIN', 'pinned-root', `${ctx.field} ends in "${subjectCn(top)}"${selfSigned ? ', a root that is not pinned' : ', which no pinned root signed'}`, ctx.field);
    }
    path.push(issuer);
  }
  for (let i = 0; i + 1 < path.length; i++) {
    const child = path[i]!;
    const parent = path[i + 1]!;
    if (!parent.ca) throw attestError('CIPHERML_E_ATTESTATION_CHAIN', 'certificate-chain', `${ctx.field}: "${subjectCn(parent)}" issues "${subjectCn(child)}" but is not a CA certificate`, ctx.field);
    if (checkEnabled('certificate-chain') && (!child.checkIssued(parent) || !signedBy(child, parent))) {
      throw attestError('CIPHERML_E_ATTESTATION_CHAIN', 'certificate-chain', `${ctx.field}: the signature of "${subjectCn(child)}" by "${subjectCn(parent)}" does not verify`, ctx.field);
    }
  }
  // The anchor is trusted by pinning (its bytes equal a shipped root whose self-signature
  // roots.test.ts checks), so its self-signature is not re-verified per document.
  const t = ctx.at.getTime();
  for (const c of path) {
    if (checkEnabled('certificate-validity') && (t < c.validFromDate.getTime() || t > c.validToDate.getTime())) {
      throw attestError('CIPHERML_E_ATTESTATION_EXPIRED', 'certificate-validity', `${ctx.field}: "${subjectCn(c)}" is valid from ${c.validFromDate.toISOString()} to ${c.validToDate.toISOString()}, not at ${ctx.at.toISOString()}`, ctx.field);
    }
  }
  return path;
}

/** A parsed certificate revocation list (RFC 5280 §5). */
export interface ParsedCrl {
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** Revoked serial numbers, lower-case hex without leading zeros. */
  readonly revoked: ReadonlySet<string>;
  readonly tbs: Uint8Array;
  readonly signature: Uint8Array;
  readonly signatureAlgorithm: string;
}

const SIG_HASH: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/** Canonical serial: lower-case hex, no leading zeros. */
export function normalizeSerial(s: string): string {
  return s.toLowerCase().replace(/^0+(?=.)/, '');
}

/** Parses a DER CRL, refusing trailing bytes. */
export function parseCrl(der: Uint8Array, field: string): ParsedCrl {
  try {
    const asn = asn1js.fromBER(der);
    if (asn.offset !== der.length || !(asn.result instanceof asn1js.Sequence)) throw new Error('not one DER SEQUENCE');
    const tbsNode = asn.result.valueBlock.value[0];
    if (tbsNode === undefined) throw new Error('no tbsCertList');
    const tbs = new Uint8Array(tbsNode.valueBeforeDecodeView);
    const crl = AsnConvert.parse(der, CertificateList);
    const revoked = new Set<string>();
    for (const r of crl.tbsCertList.revokedCertificates ?? []) revoked.add(normalizeSerial(hex(new Uint8Array(r.userCertificate))));
    return {
      issuer: crl.tbsCertList.issuer.map((rdn) => rdn.map((a) => `${a.type}=${a.value.toString()}`).join('+')).join(','),
      thisUpdate: crl.tbsCertList.thisUpdate.getTime(),
      nextUpdate: crl.tbsCertList.nextUpdate?.getTime(),
      revoked,
      tbs,
      signature: new Uint8Array(crl.signature),
      signatureAlgorithm: crl.signatureAlgorithm.algorithm,
    };
  } catch (e) {
    throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} is not a DER certificate revocation list`, field, e);
  }
}

/**
 * Checks a CRL's signature by `issuer` and its window (thisUpdate ≤ at < nextUpdate), then that
 * none of `subjects` is on it.
 */
export function checkCrl(crl: ParsedCrl, issuer: X509Certificate, subjects: readonly X509Certificate[], at: Date, field: string): void {
  const hash = SIG_HASH[crl.signatureAlgorithm];
  let ok = false;
  if (hash !== undefined) {
    try {
      ok = cryptoVerify(hash, crl.tbs, issuer.publicKey, crl.signature);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw attestError('CIPHERML_E_ATTESTATION_COLLATERAL', 'crl-signature', `${field} is not signed by "${subjectCn(issuer)}"`, field);
  const t = at.getTime();
  if (t < crl.thisUpdate.getTime() || crl.nextUpdate === undefined || t >= crl.nextUpdate.getTime()) {
    throw attestError('CIPHERML_E_ATTESTATION_EXPIRED', 'crl-validity', `${field} is valid from ${crl.thisUpdate.toISOString()} until ${crl.nextUpdate?.toISOString() ?? '(no nextUpdate)'}, not at ${at.toISOString()}`, field);
  }
  for (const s of subjects) {
    if (crl.revoked.has(normalizeSerial(s.serialNumber))) throw attestError('CIPHERML_E_ATTESTATION_REVOKED', 'revocation', `"${subjectCn(s)}" (serial ${s.serialNumber}) is revoked by ${field}`, field);
  }
}

/**
 * Verifies a raw r‖s ECDSA signature (IEEE P1363) by `key`.
 */
export function verifyRawEcdsa(hash: 'sha256' | 'sha384', data: Uint8Array, key: KeyObject, signature: Uint8Array): boolean {
  try {
    return cryptoVerify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}
