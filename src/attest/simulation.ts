import { signMessage, verifyMessage, publicIdentityFromJson, publicIdentityToJson, type Identity, type PublicIdentity } from '../core/identity.ts';
import { attestError, checkEnabled, hex, type AttestCheck } from './fail.ts';
import { expectKind, expectNoNonce, expectOneOf, expectReportData, type AttestationPolicy } from './policy.ts';
import { SIMULATION_LABEL, type AttestationResult } from './result.ts';

/**
 * Simulation reports: a software stand-in for a TEE quote, for development on machines without
 * SGX, SEV-SNP, TDX or Nitro. The "measurement" is the digest `cipherml enclave measure` prints,
 * the report data binds the same keys a real quote would, and the report is signed with the
 * aggregator's Ed25519 identity (src/core/identity.ts). It proves only that the holder of that
 * identity key claims this measurement: there is no hardware isolation, and the operator of the
 * machine can read every secret. Every field it yields is labelled {@link SIMULATION_LABEL}.
 */

const FORMAT = 'cipherml-simulation-report';
const CONTEXT = 'attest/simulation-report/v1';
const MAX_BYTES = 16 * 1024;

/** What a simulation report states. */
export interface SimulationClaims {
  /** Hex measurement of the running bundle (`cipherml enclave measure`). */
  readonly measurement: string;
  /** 64 bytes (e.g. from {@link reportDataBinding}). */
  readonly reportData: Uint8Array;
  /** Issue time; default now. */
  readonly issuedAt?: Date;
}

/**
 * Makes a signed simulation report (JSON bytes).
 *
 * @example
 * ```ts
 * const doc = createSimulationReport(aggregatorIdentity, { measurement, reportData: reportDataBinding(parts) });
 * ```
 */
export function createSimulationReport(signer: Identity, claims: SimulationClaims): Uint8Array {
  if (!/^[0-9a-f]{64,128}$/.test(claims.measurement)) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', 'the measurement must be 32 to 64 bytes of lower-case hex', 'measurement');
  if (claims.reportData.length !== 64) throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', `report data must be 64 bytes, got ${claims.reportData.length}`, 'reportData');
  const body = {
    format: FORMAT,
    version: 1,
    isolation: SIMULATION_LABEL,
    measurement: claims.measurement,
    reportData: hex(claims.reportData),
    issuedAt: (claims.issuedAt ?? new Date()).toISOString(),
    signer: publicIdentityToJson(signer),
  };
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  const signature = signMessage(signer, CONTEXT, payload);
  return Buffer.from(JSON.stringify({ report: payload.toString('base64'), signature: Buffer.from(signature).toString('base64') }), 'utf8');
}

function malformed(problem: string, field = 'report'): never {
  throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', problem, field);
}

/**
 * Verifies a simulation report: accepted only when the policy sets allow-simulation = true and
 * pins the signer in simulation-signers; then the usual measurement and report-data checks.
 *
 * @example
 * ```ts
 * const r = verifySimulationReport(doc, { ...policy, allowSimulation: true, simulationSigners: [aggregator.fingerprint] });
 * console.log(r.isolation); // "simulation: no hardware isolation"
 * ```
 */
export function verifySimulationReport(bytes: Uint8Array, policy: AttestationPolicy, at: Date = new Date()): AttestationResult {
  const checks: AttestCheck[] = [];
  expectNoNonce(policy);
  expectKind('simulation', policy);
  if (!policy.allowSimulation) throw attestError('CIPHERML_E_ATTESTATION_SIMULATION', 'simulation', 'the document is a simulation report and allow-simulation is false', 'allow-simulation');
  if (bytes.length > MAX_BYTES) malformed(`a simulation report is at most ${MAX_BYTES} bytes`);
  let outer: { report?: unknown; signature?: unknown };
  let body: Record<string, unknown>;
  let payload: Buffer;
  try {
    outer = JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof outer;
    if (typeof outer.report !== 'string' || typeof outer.signature !== 'string') throw new Error('report and signature must be base64 strings');
    payload = Buffer.from(outer.report, 'base64');
    body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    return malformed(`not a ${FORMAT} document: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (body['format'] !== FORMAT || body['version'] !== 1 || body['isolation'] !== SIMULATION_LABEL) malformed(`not a ${FORMAT} version 1 document`);
  checks.push('parse');
  let signer: PublicIdentity;
  try {
    signer = publicIdentityFromJson(body['signer'], 'signer');
  } catch (e) {
    throw attestError('CIPHERML_E_ATTESTATION_MALFORMED', 'parse', 'the signer is not a cipherml public identity', 'signer', e);
  }
  const pinned = policy.simulationSigners ?? [];
  if (checkEnabled('pinned-root') && !pinned.includes(signer.fingerprint)) {
    throw attestError('CIPHERML_E_ATTESTATION_SIMULATION', 'pinned-root', `the simulator key ${signer.fingerprint.slice(0, 16)}… (${signer.role} ${signer.id}) is not in simulation-signers`, 'simulation-signers');
  }
  checks.push('pinned-root');
  if (checkEnabled('body-signature') && !verifyMessage(signer, CONTEXT, payload, Buffer.from(outer.signature as string, 'base64'))) throw attestError('CIPHERML_E_ATTESTATION_SIGNATURE', 'body-signature', 'the simulation report signature does not verify with its signer key', 'signature');
  checks.push('body-signature');
  const measurement = typeof body['measurement'] === 'string' && /^[0-9a-f]{64,128}$/.test(body['measurement']) ? body['measurement'] : malformed('measurement must be hex', 'measurement');
  const rd = typeof body['reportData'] === 'string' && /^[0-9a-f]{128}$/.test(body['reportData']) ? Buffer.from(body['reportData'], 'hex') : malformed('reportData must be 64 bytes of hex', 'reportData');
  const issuedAt = typeof body['issuedAt'] === 'string' ? new Date(body['issuedAt']) : new Date(Number.NaN);
  if (Number.isNaN(issuedAt.getTime())) malformed('issuedAt must be an ISO time', 'issuedAt');
  if (issuedAt.getTime() > at.getTime() + 5 * 60_000) throw attestError('CIPHERML_E_ATTESTATION_EXPIRED', 'certificate-validity', `the report is issued at ${issuedAt.toISOString()}, after the verification time ${at.toISOString()}`, 'issuedAt');
  expectOneOf(measurement, policy.measurements, 'measurement', 'measurement', 'measurement');
  checks.push('measurement', 'simulation');
  expectReportData(rd, policy, 'report data', true);
  if (policy.reportData !== undefined) checks.push('report-data');
  return {
    kind: 'simulation',
    verified: true,
    at: at.toISOString(),
    measurement,
    reportData: hex(rd),
    debug: true,
    securityVersions: {},
    tcbStatus: 'not-evaluated',
    advisoryIds: [],
    fields: { isolation: SIMULATION_LABEL, signer: signer.fingerprint, signer_id: `${signer.role}:${signer.id}`, issued_at: issuedAt.toISOString() },
    checks,
    simulation: true,
    isolation: SIMULATION_LABEL,
  };
}
