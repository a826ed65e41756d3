import type { X509Certificate } from 'node:crypto';
import { decode as cborDecode, type TagDecoder } from 'cborg';
import { defaultTrustAnchors, type TrustAnchors } from './anchors.ts';
import { attestError, checkEnabled, hex, type AttestCheck } from './fail.ts';
import { expectKind, expectNotDebug, expectOneOf, expectReportData, type AttestationPolicy } from './policy.ts';
import type { AttestationResult } from './result.ts';
import { MAX_CHAIN_CERTS, parseDerCertificate, verifyChain, verifyRawEcdsa } from './x509.ts';

/**
 * AWS Nitro Enclaves attestation documents (AWS "Nitro Enclaves attestation process", and
 * aws-nitro-enclaves-nsm-api `AttestationDoc`): a COSE_Sign1 (RFC 9052 §4.2) with ES384, whose
 * payload is a CBOR map. The signature input is the Sig_structure
 * ["Signature1", protected, h'', payload]; the key is the payload's `certificate`, which chains
 * through `cabundle` (root first) to the pinned AWS Nitro root.
 */

/** Largest document accepted (real ones are ~4.5 KB). */
export const MAX_NITRO_BYTES: number = 32 * 1024;
const COSE_ALG_ES384 = -35;

/** The payload of a Nitro attestation document. */
export interface NitroDocument {
  readonly moduleId: string;
  readonly digest: string;
  readonly timestamp: number;
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  readonly certificate: X509Certificate;
  readonly cabundle: readonly X509Certificate[];
  readonly publicKey: Uint8Array | undefined;
  readonly userData: Uint8Array | undefined;
  readonly nonce: Uint8Array | undefined;
  readonly protectedHeader: Uint8Array;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

/** COSE_Sign1's CBOR tag (RFC 9052 §4.2); any other tag is refused by the decoder. */
class CoseSign1Tag {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}
const TAGS: TagDecoder[] = [];
TAGS[18] = (decodeInner) => new CoseSign1Tag(decodeInner());
// Maps stay Maps (integer keys); duplicate keys and trailing bytes are refused.
const CBOR_OPTIONS = { useMaps: true, rejectDuplicateMapKeys: true, tags: TAGS } as const;

function malformed(field: string, problem: string, cause?: unknown): never {
  throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `${field} ${problem}`, field, cause);
}

function decodeOne(b: Uint8Array, field: string): unknown {
  try {
    return cborDecode(b, CBOR_OPTIONS);
  } catch (e) {
    return malformed(field, 'is not well-formed CBOR', e);
  }
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function optBytes(v: unknown, field: string, max: number): Uint8Array | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isBytes(v) || v.length > max) malformed(field, `must be a byte string of at most ${max} bytes`);
  return v as Uint8Array;
}

/**
 * Parses a Nitro attestation document (untagged or tag-18 COSE_Sign1).
 *
 * @example
 * ```ts
 * const doc = parseNitroDocument(await readFile('attestation.cbor'));
 * console.log(hex(doc.pcrs.get(0)!));
 * ```
 */
export function parseNitroDocument(bytes: Uint8Array): NitroDocument {
  if (bytes.length > MAX_NITRO_BYTES) malformed('document', `is ${bytes.length} bytes, more than ${MAX_NITRO_BYTES}`);
  let top = decodeOne(bytes, 'document');
  if (top instanceof CoseSign1Tag) top = top.value;
  if (!Array.isArray(top) || top.length !== 4) malformed('document', 'is not a COSE_Sign1 array of 4 items');
  const [prot, unprot, payload, signature] = top as unknown[];
  if (!isBytes(prot) || !isBytes(payload) || !isBytes(signature)) malformed('document', 'COSE_Sign1 protected, payload and signature must be byte strings');
  if (!(unprot instanceof Map)) malformed('unprotected', 'must be a map');
  const ph = decodeOne(prot as Uint8Array, 'protected');
  if (!(ph instanceof Map) || ph.get(1) !== COSE_ALG_ES384) malformed('protected', 'header must name alg ES384 (-35)');
  const p = decodeOne(payload as Uint8Array, 'payload');
  if (!(p instanceof Map)) malformed('payload', 'must be a CBOR map');
  const m = p as Map<unknown, unknown>;
  const moduleId = m.get('module_id');
  const digest = m.get('digest');
  const tsRaw = m.get('timestamp');
  // cborg yields a bigint only above 2^53; a millisecond time fits a double exactly.
  const timestamp = typeof tsRaw === 'bigint' && tsRaw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(tsRaw) : tsRaw;
  const pcrsRaw = m.get('pcrs');
  const cert = m.get('certificate');
  const bundle = m.get('cabundle');
  if (typeof moduleId !== 'string' || moduleId.length === 0) malformed('module_id', 'must be a non-empty text string');
  if (digest !== 'SHA384') malformed('digest', 'must be "SHA384"');
  if (typeof timestamp !== 'number' || !Number.isInteger(timestamp) || timestamp <= 0) malformed('timestamp', 'must be a positive integer (ms since the epoch)');
  if (!(pcrsRaw instanceof Map) || pcrsRaw.size < 1 || pcrsRaw.size > 32) malformed('pcrs', 'must be a map of 1 to 32 PCRs');
  const pcrs = new Map<number, Uint8Array>();
  for (const [k, v] of pcrsRaw as Map<unknown, unknown>) {
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > 31) malformed('pcrs', 'keys must be integers 0..31');
    if (!isBytes(v) || ![32, 48, 64].includes(v.length)) malformed(`pcrs.${String(k)}`, 'must be 32, 48 or 64 bytes');
    pcrs.set(k as number, v as Uint8Array);
  }
  if (!isBytes(cert)) malformed('certificate', 'must be a byte string');
  if (!Array.isArray(bundle) || bundle.length < 1 || bundle.length > MAX_CHAIN_CERTS) malformed('cabundle', `must hold 1 to ${MAX_CHAIN_CERTS} certificates`);
  return {
    moduleId: moduleId as string,
    digest: digest as string,
    timestamp: timestamp as number,
    pcrs,
    certificate: parseDerCertificate(cert as Uint8Array, 'certificate'),
    cabundle: (bundle as unknown[]).map((c, i) => (isBytes(c) ? parseDerCertificate(c, `cabundle[${i}]`) : malformed(`cabundle[${i}]`, 'must be a byte string'))),
    publicKey: optBytes(m.get('public_key'), 'public_key', 1024),
    userData: optBytes(m.get('user_data'), 'user_data', 512),
    nonce: optBytes(m.get('nonce'), 'nonce', 512),
    protectedHeader: prot as Uint8Array,
    payload: payload as Uint8Array,
    signature: signature as Uint8Array,
  };
}

/** CBOR head of a byte string of length n (RFC 8949 §3.1, major type 2). */
function bstrHead(n: number): Uint8Array {
  if (n < 24) return Uint8Array.of(0x40 | n);
  if (n < 0x100) return Uint8Array.of(0x58, n);
  if (n < 0x10000) return Uint8Array.of(0x59, n >> 8, n & 0xff);
  return Uint8Array.of(0x5a, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * The COSE Sig_structure ["Signature1", body_protected, external_aad = h'', payload] in the
 * deterministic encoding RFC 9052 §4.4 requires (definite lengths, shortest heads).
 */
export function coseSign1SigStructure(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
  const context = Buffer.from('Signature1', 'ascii');
  return Buffer.concat([Uint8Array.of(0x84, 0x60 | context.length), context, bstrHead(protectedHeader.length), protectedHeader, bstrHead(0), bstrHead(payload.length), payload]);
}

/** Options of {@link verifyNitroDocument}. */
export interface NitroVerifyOptions {
  readonly at: Date;
  readonly policy: AttestationPolicy;
  readonly anchors?: TrustAnchors;
}

/**
 * Verifies a Nitro attestation document at `at` under `policy`. PCR0/1/2 all zero means the
 * enclave was started with --debug-mode (AWS documentation); that is refused unless allowed.
 *
 * @example
 * ```ts
 * const r = verifyNitroDocument(doc, { at: new Date(), policy });
 * ```
 */
export function verifyNitroDocument(bytes: Uint8Array, opts: NitroVerifyOptions): AttestationResult {
  const { policy, at } = opts;
  const checks: AttestCheck[] = [];
  expectKind('nitro', policy);
  const d = parseNitroDocument(bytes);
  checks.push('parse');
  const key = d.certificate.publicKey;
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1' || d.signature.length !== 96) {
    throw attestError('CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature', 'the signing certificate is not a P-384 key or the signature is not 96 bytes (ES384)', 'signature');
  }
  const sigStructure = coseSign1SigStructure(d.protectedHeader, d.payload);
  if (checkEnabled('body-signature') && !verifyRawEcdsa('sha384', sigStructure, key, d.signature)) throw attestError('CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature', 'the COSE_Sign1 signature does not verify with the document certificate', 'signature');
  checks.push('body-signature');
  const chain = [d.certificate, ...[...d.cabundle].reverse()];
  const anchors = (opts.anchors ?? defaultTrustAnchors()).nitro;
  const path = verifyChain(chain, anchors, { field: 'cabundle', at });
  if (path.length !== chain.length) throw attestError('CIPHERML_E_ATTESTATION_CHAIN', 'pinned-root', 'cabundle[0] is not the pinned AWS Nitro root', 'cabundle');
  checks.push('pinned-root', 'certificate-chain', 'certificate-validity');
  const pcr = (i: number): string => hex(d.pcrs.get(i) ?? new Uint8Array(0));
  const zero = (i: number): boolean => (d.pcrs.get(i) ?? new Uint8Array(1)).every((x) => x === 0);
  const debug = zero(0) && zero(1) && zero(2);
  expectNotDebug(debug, policy, 'PCR0, PCR1 and PCR2 are all zero');
  checks.push('debug');
  expectOneOf(pcr(0), policy.measurements, 'measurement', 'measurement', 'PCR0');
  checks.push('measurement');
  for (const [i, want] of Object.entries(policy.pcrs ?? {})) expectOneOf(pcr(Number(i)), [want], 'pcr', `pcrs.${i}`, `PCR${i}`);
  if (policy.pcrs !== undefined) checks.push('pcr');
  expectReportData(d.userData ?? new Uint8Array(0), policy, 'user_data', false);
  if (policy.reportData !== undefined) checks.push('report-data');
  if (policy.nonce !== undefined) {
    if (d.nonce === undefined || hex(d.nonce) !== policy.nonce) throw attestError('CIPHERML_E_ATTESTATION_REPORT_DATA', 'nonce', `the document's nonce is ${d.nonce === undefined ? 'absent' : hex(d.nonce)}, not the challenge ${policy.nonce}: it was made for another request (replay)`, 'nonce');
    checks.push('nonce');
  }
  const fields: Record<string, string | number | boolean> = { module_id: d.moduleId, digest: d.digest, timestamp: new Date(d.timestamp).toISOString(), cabundle_length: d.cabundle.length };
  for (const [i, v] of [...d.pcrs].sort((a, b) => a[0] - b[0])) fields[`pcr${i}`] = hex(v);
  if (d.publicKey !== undefined) fields['public_key'] = hex(d.publicKey);
  if (d.nonce !== undefined) fields['nonce'] = hex(d.nonce);
  return {
    kind: 'nitro',
    verified: true,
    at: at.toISOString(),
    measurement: pcr(0),
    reportData: d.userData === undefined ? '' : hex(d.userData),
    debug,
    securityVersions: {},
    tcbStatus: 'not-evaluated',
    advisoryIds: [],
    fields,
    checks,
    simulation: false,
    isolation: 'hardware: AWS Nitro Enclaves',
  };
}
