import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '../core/identity.ts';
import { isCipherMLError } from '../core/errors.ts';
import { bindingDigest, expectBinding, reportDataBinding } from './binding.ts';
import { DEFAULT_POLICY, type AttestationPolicy } from './policy.ts';
import { SIMULATION_LABEL } from './result.ts';
import { createSimulationReport } from './simulation.ts';
import { verifyReport } from './verify.ts';

const aggregator = generateIdentity('aggregator', 'agg-1');
const measurement = 'ab'.repeat(48);
const parts = { paillierPublicKey: Buffer.from('paillier-n-and-g'), tlsPublicKey: Buffer.from('tls-spki'), runId: 'run-7' };
const allow: AttestationPolicy = { ...DEFAULT_POLICY, allowSimulation: true, simulationSigners: [aggregator.fingerprint], measurements: [measurement] };

function refused(f: () => unknown): { code: string; check: unknown } {
  try {
    f();
  } catch (e) {
    if (isCipherMLError(e)) return { code: e.code, check: e.details?.['check'] };
    throw e;
  }
  throw new Error('accepted');
}

describe('simulation reports (no hardware isolation)', () => {
  const doc = createSimulationReport(aggregator, { measurement, reportData: reportDataBinding(parts) });

  it('verify only under allow-simulation with the pinned simulator key, labelled as simulation', () => {
    const r = verifyReport({ kind: 'simulation', document: doc }, allow);
    expect(r).toMatchObject({ simulation: true, isolation: SIMULATION_LABEL, measurement, debug: true });
    expect(r.fields['isolation']).toBe(SIMULATION_LABEL);
    expectBinding(r, parts);
  });

  it('the default policy refuses them', () => {
    expect(refused(() => verifyReport({ kind: 'simulation', document: doc }, DEFAULT_POLICY))).toEqual({ code: 'CIPHERML_E_ATTESTATION_SIMULATION', check: 'simulation' });
  });

  it('a report signed by an unpinned key, or altered after signing, is refused', () => {
    const mallory = generateIdentity('aggregator', 'agg-1');
    const forged = createSimulationReport(mallory, { measurement, reportData: reportDataBinding(parts) });
    expect(refused(() => verifyReport({ kind: 'simulation', document: forged }, allow))).toEqual({ code: 'CIPHERML_E_ATTESTATION_SIMULATION', check: 'pinned-root' });
    // Mallory swaps in the pinned identity but keeps her own signature.
    const outer = JSON.parse(Buffer.from(forged).toString()) as { report: string; signature: string };
    const body = JSON.parse(Buffer.from(outer.report, 'base64').toString()) as Record<string, unknown>;
    const honest = JSON.parse(Buffer.from(JSON.parse(Buffer.from(doc).toString()).report as string, 'base64').toString()) as Record<string, unknown>;
    body['signer'] = honest['signer'];
    const swapped = Buffer.from(JSON.stringify({ report: Buffer.from(JSON.stringify(body)).toString('base64'), signature: outer.signature }));
    expect(refused(() => verifyReport({ kind: 'simulation', document: swapped }, allow))).toEqual({ code: 'CIPHERML_E_ATTESTATION_SIGNATURE', check: 'body-signature' });
    // The operator edits the measurement of an honest report.
    honest['measurement'] = 'cd'.repeat(48);
    const edited = Buffer.from(JSON.stringify({ report: Buffer.from(JSON.stringify(honest)).toString('base64'), signature: JSON.parse(Buffer.from(doc).toString()).signature as string }));
    expect(refused(() => verifyReport({ kind: 'simulation', document: edited }, { ...allow, measurements: ['cd'.repeat(48)] }))).toEqual({ code: 'CIPHERML_E_ATTESTATION_SIGNATURE', check: 'body-signature' });
  });

  it('another measurement, or report data for other keys, is refused', () => {
    expect(refused(() => verifyReport({ kind: 'simulation', document: doc }, { ...allow, measurements: ['cd'.repeat(48)] }))).toEqual({ code: 'CIPHERML_E_ATTESTATION_POLICY', check: 'measurement' });
    const r = verifyReport({ kind: 'simulation', document: doc }, allow);
    expect(refused(() => expectBinding(r, { ...parts, tlsPublicKey: Buffer.from('mitm-spki') }))).toEqual({ code: 'CIPHERML_E_ATTESTATION_REPORT_DATA', check: 'report-data' });
    expect(refused(() => expectBinding(r, { ...parts, runId: 'run-8' }))).toEqual({ code: 'CIPHERML_E_ATTESTATION_REPORT_DATA', check: 'report-data' });
  });
});

describe('report-data binding', () => {
  it('known answer', () => {
    expect(Buffer.from(bindingDigest({ paillierPublicKey: Buffer.from('P'), tlsPublicKey: Buffer.from('T'), runId: 'r' })).toString('hex')).toBe(KAT);
    const rd = reportDataBinding(parts);
    expect(rd.length).toBe(64);
    expect(rd.subarray(32).every((x) => x === 0)).toBe(true);
  });
  it('is injective across part boundaries (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), fc.string({ maxLength: 6 }), fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), fc.string({ maxLength: 6 }), (a, b, c, x, y, z) => {
        const same = Buffer.from(a).equals(Buffer.from(x)) && Buffer.from(b).equals(Buffer.from(y)) && c === z;
        const eq = Buffer.from(bindingDigest({ paillierPublicKey: a, tlsPublicKey: b, runId: c })).equals(Buffer.from(bindingDigest({ paillierPublicKey: x, tlsPublicKey: y, runId: z })));
        expect(eq).toBe(same);
      }),
    );
    expect(Buffer.from(bindingDigest({ paillierPublicKey: Buffer.from('ab'), tlsPublicKey: Buffer.from('c'), runId: '' }))).not.toEqual(Buffer.from(bindingDigest({ paillierPublicKey: Buffer.from('a'), tlsPublicKey: Buffer.from('bc'), runId: '' })));
  });
});

// Computed independently: SHA-256 over (u32be len ‖ bytes) of 'cipherml/attest/report-data/v1', 'P', 'T', 'r'.
const KAT = 'cd9d212f81217bb688cf71d756454e0aa345be56ba3dd6840ef2cb796d0a9586';
