import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { defaultTrustAnchors } from '../../src/attest/anchors.ts';
import { isCipherMLError, type ErrorCode } from '../../src/core/errors.ts';
import { verifyReport, type AttestationEvidence } from '../../src/attest/verify.ts';
import type { AttestationPolicy } from '../../src/attest/policy.ts';
import { fixture, mcCollateral, goTdxCollateral, vector, ANY_TCB } from './vectors.ts';

/**
 * Every negative case of the fixtures' EXPECTED.json, and tampered variants added here, is refused
 * with a typed error whose code and `details.check` name the check that failed.
 */

function refusal(f: () => unknown): { code: ErrorCode; check: unknown; message: string } {
  try {
    f();
  } catch (e) {
    if (!isCipherMLError(e)) throw new Error(`not a typed refusal: ${String(e)}`, { cause: e });
    return { code: e.code, check: e.details?.['check'], message: e.message };
  }
  throw new Error('the document was accepted');
}

function mutate(b: Uint8Array, index: number, f: (x: number) => number): Buffer {
  const m = Buffer.from(b);
  m[index] = f(m[index]!) & 0xff;
  return m;
}

function run(name: string, opts: { bytes?: (b: Buffer) => Uint8Array; at?: string; policy?: Partial<AttestationPolicy>; evidence?: (doc: Uint8Array) => AttestationEvidence; anchors?: ReturnType<typeof defaultTrustAnchors> } = {}) {
  const v = vector(name);
  const doc = opts.bytes === undefined ? fixture(v.file) : opts.bytes(fixture(v.file));
  const evidence = (opts.evidence ?? v.evidence)(doc);
  return refusal(() => verifyReport(evidence, { ...v.policy, ...opts.policy }, { at: new Date(opts.at ?? v.at), ...(opts.anchors === undefined ? {} : { anchors: opts.anchors }) }));
}

function expectRefused(r: { code: ErrorCode; check: unknown; message: string }, code: ErrorCode, check: string): void {
  expect({ code: r.code, check: r.check }).toEqual({ code, check });
  expect(r.message).toContain(`check ${check} failed`);
}

describe('SGX DCAP negative cases from the sources', () => {
  const mc = 'sgx mc-attestation';
  it('mc-attestation: at 2023-08-11T19:56:44Z the TCB info has expired', () => {
    expectRefused(run(mc, { at: '2023-08-11T19:56:44Z' }), 'CIPHERML_E_ATTESTATION_EXPIRED', 'tcb-info-validity');
  });
  it('mc-attestation: at 2023-07-12T19:56:44Z the QE identity is not yet valid', () => {
    const r = run(mc, { at: '2023-07-12T19:56:44Z' });
    expectRefused(r, 'CIPHERML_E_ATTESTATION_EXPIRED', 'qe-identity-validity');
    expect(r.message).toContain('not yet valid');
  });
  it('mc-attestation: quote byte[4] += 1 is refused (the source: signature; here already the header: tee type 1 does not exist)', () => {
    const r = run(mc, { bytes: (b) => mutate(b, 4, (x) => x + 1) });
    expectRefused(r, 'CIPHERML_E_ATTESTATION_MALFORMED', 'parse');
    expect(r.message).toContain('tee type 0x1');
    // A header byte the parser does not constrain (qe_vendor_id) reaches the signature check.
    expectRefused(run(mc, { bytes: (b) => mutate(b, 12, (x) => x + 1) }), 'CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature');
  });
  it('mc-attestation: certification data type 1 is unsupported', () => {
    const at = 436 + 64 + 64 + 384 + 64;
    const r = run(mc, { bytes: (b) => { const m = Buffer.from(b); m.writeUInt16LE(1, at + 2 + m.readUInt16LE(at)); return m; } });
    expectRefused(r, 'CIPHERML_E_ATTESTATION_MALFORMED', 'parse');
    expect(r.message).toContain('certification data type 1 is not supported');
  });
  it('mc-attestation: Intel\'s example TCB info (another FMSPC, not signed for it) is refused', () => {
    const r = run(mc, { evidence: (document) => ({ kind: 'sgx-dcap', document, collateral: mcCollateral({ pckCrl: false, tcbInfo: 'example_tcb.json' }) }) });
    expect(r.code).toBe('CIPHERML_E_ATTESTATION_COLLATERAL');
    expect(['tcb-info-signature', 'tcb-info-platform']).toContain(r.check);
  });
  it('mc-attestation: the shipped PCK CRL is stale at the quote time, so a policy requiring revocation refuses it', () => {
    const r = run(mc, { policy: { requireRevocationCheck: true }, evidence: (document) => ({ kind: 'sgx-dcap', document, collateral: mcCollateral({ pckCrl: true }) }) });
    expectRefused(r, 'CIPHERML_E_ATTESTATION_EXPIRED', 'crl-validity');
    expectRefused(run(mc, { policy: { requireRevocationCheck: true } }), 'CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present');
  });
  it('mc-attestation: SWHardeningNeeded is refused by the default policy (UpToDate only)', () => {
    const r = run(mc, { policy: { acceptedTcbStatuses: ['UpToDate'] } });
    expectRefused(r, 'CIPHERML_E_ATTESTATION_TCB', 'tcb-status');
    expect(r.message).toContain('SWHardeningNeeded');
    expect(r.message).toContain('INTEL-SA-00334');
  });
  it('mc-sgx-dcap-types: byte[436 + 64] += 1 (attestation key) is refused', () => {
    const r = run('sgx mc-sgx-dcap-types', { bytes: (b) => mutate(b, 436 + 64, (x) => x + 1) });
    expect(r.code).toBe('CIPHERML_E_ATTESTATION_SIGNATURE');
    expect(['attestation-key', 'body-signature']).toContain(r.check);
  });
  it('mc-sgx-dcap-types: a debug enclave is refused by the default policy', () => {
    expectRefused(run('sgx mc-sgx-dcap-types', { policy: { allowDebug: false } }), 'CIPHERML_E_ATTESTATION_DEBUG', 'debug');
  });
  it('without collateral the default policy refuses (collateral required)', () => {
    expectRefused(run('sgx mc-sgx-dcap-types', { policy: { requireCollateral: true } }), 'CIPHERML_E_ATTESTATION_COLLATERAL', 'collateral-present');
  });
});

describe('TDX negative cases from go-tdx-guest (byte mutations of tdx_prod_quote_SPR_E4.dat)', () => {
  const spr = 'tdx go-tdx-guest v4';
  const set = (i: number, v: number) => (b: Buffer) => mutate(b, i, () => v);
  it('byte[0x00] = 3: quote format not supported', () => {
    const r = run(spr, { bytes: set(0x00, 3) });
    expectRefused(r, 'CIPHERML_E_ATTESTATION_MALFORMED', 'parse');
    expect(r.message).toContain('quote format not supported');
  });
  it('byte[0x278] = 0x10: a changed length field is refused', () => {
    expectRefused(run(spr, { bytes: set(0x278, 0x10) }), 'CIPHERML_E_ATTESTATION_MALFORMED', 'parse');
  });
  it('byte[0x1343] = 0x32: a broken PEM END marker is refused', () => {
    const r = run(spr, { bytes: set(0x1343, 0x32) });
    expectRefused(r, 'CIPHERML_E_ATTESTATION_MALFORMED', 'parse');
    expect(r.message).toContain('BEGIN/END marker');
  });
  it('byte[0x1329] = 0x32 (root certificate): not the pinned root', () => {
    expect(run(spr, { bytes: set(0x1329, 0x32) }).code).toBe('CIPHERML_E_ATTESTATION_CHAIN');
  });
  it('byte[0xF5F] = 0x32 (intermediate) and byte[0xB77] = 0x32 (PCK leaf): certificate signature', () => {
    expectRefused(run(spr, { bytes: set(0xf5f, 0x32) }), 'CIPHERML_E_ATTESTATION_CHAIN', 'certificate-chain');
    expectRefused(run(spr, { bytes: set(0xb77, 0x32) }), 'CIPHERML_E_ATTESTATION_CHAIN', 'certificate-chain');
  });
  it('byte[0x1E] (header) and byte[0x3C] (TD body) = 0x32: quote signature', () => {
    expectRefused(run(spr, { bytes: set(0x1e, 0x32) }), 'CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature');
    expectRefused(run(spr, { bytes: set(0x3c, 0x32) }), 'CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature');
  });
  it('the check tool\'s bad policy values: MRTD, report data, TEE TCB SVN', () => {
    expectRefused(run(spr, { policy: { mrTd: ['6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d1115cbb'] } }), 'CIPHERML_E_ATTESTATION_POLICY', 'measurement');
    expectRefused(run(spr, { policy: { reportData: '6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f2213' } }), 'CIPHERML_E_ATTESTATION_REPORT_DATA', 'report-data');
    expectRefused(run(spr, { policy: { minTeeTcbSvn: '03000500000000000000000000000011' } }), 'CIPHERML_E_ATTESTATION_TCB', 'min-svn');
  });
  it('the shipped sample TCB info has no level for this platform (go-tdx-guest expects that failure)', () => {
    const r = run(spr, { policy: { ...ANY_TCB, requireRevocationCheck: true }, evidence: (document) => ({ kind: 'tdx', document, collateral: goTdxCollateral(false) }) });
    expectRefused(r, 'CIPHERML_E_ATTESTATION_TCB', 'tcb-status');
    expect(r.message).toContain('no TCB level');
  });
  it('in 2053 (go-tdx-guest futureTime) the PCK chain has expired', () => {
    expectRefused(run(spr, { at: '2053-07-01T01:00:00Z' }), 'CIPHERML_E_ATTESTATION_EXPIRED', 'certificate-validity');
  });
  it('v5: truncated, and with its 2023 collateral at the 2026 quote time', () => {
    expectRefused(run('tdx go-tdx-guest v5', { bytes: (b) => b.subarray(0, 1000) }), 'CIPHERML_E_ATTESTATION_MALFORMED', 'parse');
    expect(run('tdx go-tdx-guest v5', { policy: ANY_TCB, evidence: (document) => ({ kind: 'tdx', document, collateral: goTdxCollateral(true) }) }).code).toBe('CIPHERML_E_ATTESTATION_EXPIRED');
  });
  it('dcap-qvl TDX: a TCB info from another platform is refused', () => {
    const r = run('tdx dcap-qvl', { evidence: (document) => ({ kind: 'tdx', document, collateral: goTdxCollateral(false) }) });
    expect(r.code).toMatch(/CIPHERML_E_ATTESTATION_(COLLATERAL|EXPIRED)/);
  });
  it('an SGX quote given as --kind tdx (and the reverse) is refused naming --kind', () => {
    expectRefused(run('tdx dcap-qvl', { evidence: (document) => ({ kind: 'sgx-dcap', document }) }), 'CIPHERML_E_ATTESTATION_MALFORMED', 'kind');
  });
});

describe('SEV-SNP negative cases', () => {
  it('trustee: report byte[42] += 1 breaks the signature; byte[384] += 1 breaks VCEK TCB = REPORTED_TCB', () => {
    for (const name of ['snp trustee vcek', 'snp trustee vlek']) {
      expectRefused(run(name, { bytes: (b) => mutate(b, 42, (x) => x + 1) }), 'CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature');
      expectRefused(run(name, { bytes: (b) => mutate(b, 384, (x) => x + 1) }), 'CIPHERML_E_ATTESTATION_CHAIN', 'vek-tcb-match');
    }
  });
  it('trustee: VCEK byte[42] += 1 is refused', () => {
    const r = run('snp trustee vcek', { evidence: (document) => ({ kind: 'sev-snp', document, vek: new X509Certificate(mutate(fixture('sev-snp/trustee/test-vcek.der'), 42, (x) => x + 1)) }) });
    expect(['CIPHERML_E_ATTESTATION_CHAIN', 'CIPHERML_E_ATTESTATION_MALFORMED']).toContain(r.code);
  });
  it('go-sev-guest: a debug guest is refused by the default policy; product Genoa expected', () => {
    expectRefused(run('snp go-sev-guest', { policy: { allowDebug: false } }), 'CIPHERML_E_ATTESTATION_DEBUG', 'debug');
    expectRefused(run('snp go-sev-guest', { policy: { product: 'Genoa' } }), 'CIPHERML_E_ATTESTATION_POLICY', 'product');
  });
  it('go-sev-guest: a fake ASK/ARK bundle (Genoa keys pinned for Milan) is refused', () => {
    const a = defaultTrustAnchors();
    expect(run('snp go-sev-guest', { anchors: { ...a, amd: { Milan: a.amd['Genoa']! } } }).code).toBe('CIPHERML_E_ATTESTATION_CHAIN');
  });
  it('Oak Genoa: a flipped MEASUREMENT bit, another expected measurement, a higher minimum TCB', () => {
    expectRefused(run('snp oak genoa', { bytes: (b) => mutate(b, 0x90, (x) => x ^ 1) }), 'CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature');
    expectRefused(run('snp oak genoa', { policy: { measurements: ['00'.repeat(48)] } }), 'CIPHERML_E_ATTESTATION_POLICY', 'measurement');
    expectRefused(run('snp oak genoa', { policy: { minTcb: { bootloader: 10, tee: 0, snp: 26, microcode: 84 } } }), 'CIPHERML_E_ATTESTATION_TCB', 'min-tcb');
  });
  it('a flipped byte in the signature field is refused', () => {
    expectRefused(run('snp oak genoa', { bytes: (b) => mutate(b, 0x2a0, (x) => x ^ 0x80) }), 'CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature');
  });
});

describe('Nitro negative cases', () => {
  it('evervault beta: expected PCR0/1/2 altered', () => {
    expectRefused(run('nitro evervault beta', { policy: { pcrs: { 0: '00'.repeat(48), 1: '11'.repeat(48), 2: '22'.repeat(48) } } }), 'CIPHERML_E_ATTESTATION_POLICY', 'pcr');
  });
  it('blindai: 4 hours later the chain has expired; today too (the real current time)', () => {
    expectRefused(run('nitro blindai', { at: '2023-03-22T18:28:27.405Z' }), 'CIPHERML_E_ATTESTATION_EXPIRED', 'certificate-validity');
    expectRefused(run('nitro blindai', { at: new Date().toISOString() }), 'CIPHERML_E_ATTESTATION_EXPIRED', 'certificate-validity');
  });
  it('blindai: a flipped signature byte', () => {
    expectRefused(run('nitro blindai', { bytes: (b) => mutate(b, b.length - 1, (x) => x ^ 1) }), 'CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature');
  });
  it('debug-mode documents are refused by the default policy', () => {
    for (const n of ['nitro blindai', 'nitro evervault ga', 'nitro evervault beta debug']) expectRefused(run(n, { policy: { allowDebug: false } }), 'CIPHERML_E_ATTESTATION_DEBUG', 'debug');
  });
  it('GA: user_data binds the TLS key; another expected key is refused', () => {
    expectRefused(run('nitro evervault ga', { policy: { reportData: 'aa'.repeat(91) } }), 'CIPHERML_E_ATTESTATION_REPORT_DATA', 'report-data');
  });
  it('an unknown root: the document chains to AWS, the verifier pins only the Intel root', () => {
    const a = defaultTrustAnchors();
    expectRefused(run('nitro evervault beta', { anchors: { ...a, nitro: a.intel } }), 'CIPHERML_E_ATTESTATION_CHAIN', 'pinned-root');
  });
  it('a flipped byte in the payload (PCR value) breaks the COSE signature', () => {
    const doc = fixture(vector('nitro evervault beta').file);
    const at = doc.indexOf(Buffer.from('f4d48b81a460c991', 'hex'));
    expect(at).toBeGreaterThan(0);
    expectRefused(run('nitro evervault beta', { bytes: (b) => mutate(b, at, (x) => x ^ 1) }), 'CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature');
  });
});

describe('no input crashes the verifier or is accepted when altered (property)', () => {
  it('any single-byte change in a signed region or certificate is refused with a typed error', () => {
    const cases = [
      { name: 'snp trustee vcek', end: 0x2a0 },
      { name: 'tdx dcap-qvl', end: 4936 },
      { name: 'nitro evervault beta', end: 4654 },
    ];
    fc.assert(
      fc.property(fc.constantFrom(...cases), fc.nat(), fc.integer({ min: 1, max: 255 }), (c, i, x) => {
        const r = run(c.name, { bytes: (b) => mutate(b, i % c.end, (y) => y ^ x) });
        expect(r.code).toMatch(/^CIPHERML_E_ATTESTATION_/);
      }),
      { numRuns: 60 },
    );
  });
  it('the tolerated bytes after the signature data are not covered by anything: removing or changing them changes no field', () => {
    const v = vector('tdx dcap-qvl');
    const base = verifyReport(v.evidence(fixture(v.file)), v.policy, { at: new Date(v.at) });
    const cut = verifyReport(v.evidence(fixture(v.file).subarray(0, 4936)), v.policy, { at: new Date(v.at) });
    expect({ ...cut, fields: { ...cut.fields, trailing_bytes: 70 } }).toEqual(base);
  });
  it('truncations are refused as malformed, never with an untyped error', () => {
    fc.assert(
      // tdx dcap-qvl ends its signature data at 4936; the 70 zero bytes after it are tolerated padding.
      fc.property(fc.constantFrom(['sgx dcap-qvl', 4600], ['tdx dcap-qvl', 4936], ['snp oak genoa', 1184], ['nitro blindai', 4429]), fc.nat(), ([name, end], n) => {
        const r = run(name as string, { bytes: (b) => b.subarray(0, n % (end as number)) });
        expect(r.code).toMatch(/^CIPHERML_E_ATTESTATION_/);
      }),
      { numRuns: 60 },
    );
  });
});

describe('Nitro nonce (freshness)', () => {
  const nonce = 'cb3dc2eb76c0c1344adf10cc4868591e5bb7fa4b4a8069e144762f71ea1d0017e23f89ba9db04eb26b20fca1a954447d5fb466067b06a6a22eed8100c73b398a4f85a099f8ffcf84c654485590158c7d966e8b09af224654f97f63ec07096c78925f961eff653fd4f3aff684f07f7505722be06316cf8c48d643a33aba4af214991708ab2ee1ee85d42d0ad218915a369d62a483e60538ed8d0fb3d7f34712d895b24bd971a425cbfa9efd2c5e9d511656064260f8faf9cf69c5306137e748d9bcddb4d0d3e01fba1acb9ca35ff11694ab32bd135effe00124ee939b0c21db78cf8e50e37ce0eed59e5e6322197addaed909dcc2bfe5195ed32567a64eb59db3';
  it('the expected challenge verifies; another challenge (a replayed document) or a missing nonce is refused', () => {
    const v = vector('nitro evervault beta');
    expect(verifyReport(v.evidence(fixture(v.file)), { ...v.policy, nonce }, { at: new Date(v.at) }).checks).toContain('nonce');
    expectRefused(run('nitro evervault beta', { policy: { nonce: '00' + nonce.slice(2) } }), 'CIPHERML_E_ATTESTATION_REPORT_DATA', 'nonce');
    expectRefused(run('nitro blindai', { policy: { nonce } }), 'CIPHERML_E_ATTESTATION_REPORT_DATA', 'nonce');
    expectRefused(run('snp oak genoa', { policy: { nonce } }), 'CIPHERML_E_ATTESTATION_POLICY', 'nonce');
  });
});
