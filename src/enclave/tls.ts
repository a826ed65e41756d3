import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  Extension,
  Extensions,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_basicConstraints,
  id_ce_subjectAltName,
} from '@peculiar/asn1-x509';
import { CipherMLError } from '../core/errors.ts';

/**
 * The aggregator's TLS identity, generated inside the (simulated) enclave at start and never
 * written unsealed: an ECDSA P-256 key and a self-signed certificate (RFC 5280) for the names
 * workers dial. Workers do not trust it through a CA: they trust it because the attestation
 * document's report data binds SHA-256 of its SubjectPublicKeyInfo (src/attest/binding.ts), and
 * they then pin exactly this certificate for the gRPC channel (RA-TLS style).
 */

/** A TLS key and its self-signed certificate, in memory. */
export interface EnclaveTls {
  /** PKCS#8 PEM; lives only in memory and in the sealed checkpoint. */
  readonly keyPem: string;
  readonly certPem: string;
  /** SubjectPublicKeyInfo DER of the certificate's key: what the report data binds. */
  readonly spki: Uint8Array;
}

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';

/**
 * Generates a P-256 key and a self-signed certificate valid for `hosts` (IP addresses or DNS names)
 * for `days` days.
 *
 * @example
 * ```ts
 * const tls = generateEnclaveTls(['127.0.0.1', 'localhost']);
 * ```
 */
export function generateEnclaveTls(hosts: readonly string[], days = 30): EnclaveTls {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return certify(privateKey, publicKey.export({ type: 'spki', format: 'der' }), hosts, days);
}

/** Re-reads a sealed TLS identity, checking that the key and the certificate belong together. */
export function enclaveTlsFromPem(keyPem: string, certPem: string): EnclaveTls {
  const key = createPrivateKey(keyPem);
  const cert = new X509Certificate(certPem);
  if (!cert.checkPrivateKey(key)) throw new CipherMLError('CIPHERML_E_SEALED_DATA', 'the sealed TLS key does not match its certificate', { param: 'tls' });
  return { keyPem, certPem, spki: spkiOf(cert) };
}

/**
 * SubjectPublicKeyInfo DER of a certificate.
 *
 * @example
 * ```ts
 * const spki = spkiOf(new X509Certificate(pem));
 * ```
 */
export function spkiOf(cert: X509Certificate): Uint8Array {
  return new Uint8Array(cert.publicKey.export({ type: 'spki', format: 'der' }));
}

/**
 * A certificate serial from 16 random bytes: positive (RFC 5280 §4.1.2.2) and minimally encoded
 * as a DER INTEGER (X.690 §8.3.2): the first byte is in [0x40, 0x7f]. Clearing only the top bit
 * left a leading 0x00 before a byte < 0x80 once in 256 certificates, which OpenSSL refuses
 * ("illegal padding").
 *
 * @example
 * ```ts
 * certificateSerial(new Uint8Array(16))[0]; // 0x40
 * ```
 */
export function certificateSerial(random: Uint8Array): Uint8Array {
  const serial = Uint8Array.from(random);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  return serial;
}

function certify(privateKey: KeyObject, spkiDer: Buffer, hosts: readonly string[], days: number): EnclaveTls {
  const name = new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: 'cipherml enclave aggregator' }) })])]);
  const now = Date.now();
  const names = hosts.map((h) => (/^[0-9.]+$|:/.test(h) ? new GeneralName({ iPAddress: h }) : new GeneralName({ dNSName: h })));
  const serial = certificateSerial(randomBytes(16));
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(serial).buffer,
    signature: new AlgorithmIdentifier({ algorithm: ECDSA_SHA256 }),
    issuer: name,
    validity: new Validity({ notBefore: new Date(now - 60_000), notAfter: new Date(now + days * 86_400_000) }),
    subject: name,
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
    extensions: new Extensions([
      new Extension({ extnID: id_ce_basicConstraints, critical: true, extnValue: new OctetString(AsnConvert.serialize(new BasicConstraints({ cA: false }))) }),
      new Extension({ extnID: id_ce_subjectAltName, critical: false, extnValue: new OctetString(AsnConvert.serialize(new SubjectAlternativeName(names))) }),
    ]),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign('sha256', tbsDer, { key: privateKey, dsaEncoding: 'der' });
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_SHA256 }), signatureValue: new Uint8Array(signature).buffer });
  const der = Buffer.from(AsnConvert.serialize(cert));
  const certPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyPem, certPem, spki: new Uint8Array(spkiDer) };
}
