import { readFile } from 'node:fs/promises';
import { parseTomlBounded } from '../core/bounded-toml.ts';
import { CipherMLError } from '../core/errors.ts';
import { attestError, bytesEqual, checkEnabled, hex } from './fail.ts';

/** The document kinds cipherml verifies. `simulation` is a software report with no hardware isolation. */
export const ATTESTATION_KINDS = ['sgx-dcap', 'tdx', 'sev-snp', 'nitro', 'simulation'] as const;
export type AttestationKind = (typeof ATTESTATION_KINDS)[number];

/** Minimum AMD SEV-SNP TCB (security patch levels of each firmware component). */
export interface SnpMinTcb {
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
}

/**
 * What a verifier accepts. Expected values are lower-case hex; every list means "one of". Unset
 * expectations are not checked, so a policy for real use names at least the measurement. The
 * defaults are strict: only `UpToDate` TCBs, no debug enclaves, collateral and revocation lists
 * required for Intel quotes, no simulation reports.
 */
export interface AttestationPolicy {
  readonly kind?: AttestationKind;
  /** The kind's main measurement: MRENCLAVE (SGX), MRTD (TDX), MEASUREMENT (SNP), PCR0 (Nitro), bundle digest (simulation). */
  readonly measurements?: readonly string[];
  readonly mrEnclave?: readonly string[];
  readonly mrSigner?: readonly string[];
  readonly isvProdId?: number;
  /** Minimum ISVSVN (SGX) or GUEST_SVN (SNP). */
  readonly minSvn?: number;
  readonly mrTd?: readonly string[];
  readonly mrSeam?: readonly string[];
  readonly rtmr?: Readonly<Record<number, string>>;
  /** Minimum TEE_TCB_SVN (TDX), compared component by component (16 bytes hex). */
  readonly minTeeTcbSvn?: string;
  readonly minTcb?: SnpMinTcb;
  /** AMD product (`Milan`, `Genoa`). */
  readonly product?: string;
  readonly pcrs?: Readonly<Record<number, string>>;
  /** Expected report data (SGX/TDX/SNP: up to 64 bytes, zero-padded; Nitro: user_data exactly). */
  readonly reportData?: string;
  /** Expected Nitro `nonce` (hex): the verifier's challenge, for freshness. */
  readonly nonce?: string;
  readonly acceptedTcbStatuses: readonly string[];
  readonly allowDebug: boolean;
  readonly requireCollateral: boolean;
  readonly requireRevocationCheck: boolean;
  readonly allowSimulation: boolean;
  /** Fingerprints (src/core/identity.ts) of simulator keys accepted for simulation reports. */
  readonly simulationSigners?: readonly string[];
}

/** The strict default policy. */
export const DEFAULT_POLICY: AttestationPolicy = {
  acceptedTcbStatuses: ['UpToDate'],
  allowDebug: false,
  requireCollateral: true,
  requireRevocationCheck: true,
  allowSimulation: false,
};

/** Intel TCB statuses (PCS API v4) plus the one cipherml uses when no collateral was evaluated. */
export const TCB_STATUSES = ['UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded', 'Revoked', 'not-evaluated'] as const;

const KEYS = [
  'kind', 'measurement', 'mrenclave', 'mrsigner', 'isv-prod-id', 'min-svn', 'mrtd', 'mrseam', 'rtmr', 'min-tee-tcb-svn', 'min-tcb', 'product', 'pcrs',
  'report-data', 'nonce', 'accepted-tcb-statuses', 'allow-debug', 'require-collateral', 'require-revocation-check', 'allow-simulation', 'simulation-signers',
] as const;

function invalid(source: string, key: string, problem: string): never {
  throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${key} in ${source} ${problem}`, { param: key });
}

function hexValue(v: unknown, source: string, key: string, bytes?: number): string {
  if (typeof v !== 'string' || !/^(0x)?[0-9a-fA-F]*$/.test(v) || v.replace(/^0x/, '').length % 2 !== 0) invalid(source, key, 'must be a hex string');
  const h = (v as string).replace(/^0x/, '').toLowerCase();
  if (bytes !== undefined && h.length !== 2 * bytes) invalid(source, key, `must be ${bytes} bytes (${2 * bytes} hex digits), got ${h.length / 2}`);
  return h;
}

function hexList(v: unknown, source: string, key: string, bytes: number): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) invalid(source, key, 'must list at least one value');
  return list.map((x, i) => hexValue(x, source, `${key}[${i}]`, bytes));
}

function uint(v: unknown, source: string, key: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) invalid(source, key, 'must be a non-negative integer');
  return v as number;
}

function bool(v: unknown, source: string, key: string): boolean {
  if (typeof v !== 'boolean') invalid(source, key, 'must be true or false');
  return v as boolean;
}

function indexMap(v: unknown, source: string, key: string, max: number, bytes: number | undefined): Record<number, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(source, key, 'must be a table of index = "hex"');
  const out: Record<number, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const i = Number(k);
    if (!Number.isInteger(i) || i < 0 || i > max) invalid(source, `${key}.${k}`, `index must be 0..${max}`);
    out[i] = hexValue(x, source, `${key}.${k}`, bytes);
  }
  return out;
}

/**
 * Builds a policy from a parsed JSON/TOML object with kebab-case keys (unknown keys are refused,
 * so a misspelt expectation cannot silently go unchecked).
 *
 * @example
 * ```ts
 * const p = policyFromObject({ kind: 'sgx-dcap', mrenclave: ['33d8…'], 'accepted-tcb-statuses': ['UpToDate'] }, 'policy.toml');
 * ```
 */
export function policyFromObject(value: unknown, source: string): AttestationPolicy {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(source, 'policy', 'must be a table/object');
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(KEYS as readonly string[]).includes(k)) invalid(source, k, `is not a policy key (known: ${KEYS.join(', ')})`);
  const p: { -readonly [K in keyof AttestationPolicy]: AttestationPolicy[K] } = { ...DEFAULT_POLICY };
  if (o['kind'] !== undefined) {
    if (!(ATTESTATION_KINDS as readonly unknown[]).includes(o['kind'])) invalid(source, 'kind', `must be one of ${ATTESTATION_KINDS.join(', ')}`);
    p.kind = o['kind'] as AttestationKind;
  }
  if (o['measurement'] !== undefined) {
    const list = Array.isArray(o['measurement']) ? o['measurement'] : [o['measurement']];
    p.measurements = list.map((x, i) => hexValue(x, source, `measurement[${i}]`));
  }
  if (o['mrenclave'] !== undefined) p.mrEnclave = hexList(o['mrenclave'], source, 'mrenclave', 32);
  if (o['mrsigner'] !== undefined) p.mrSigner = hexList(o['mrsigner'], source, 'mrsigner', 32);
  if (o['isv-prod-id'] !== undefined) p.isvProdId = uint(o['isv-prod-id'], source, 'isv-prod-id');
  if (o['min-svn'] !== undefined) p.minSvn = uint(o['min-svn'], source, 'min-svn');
  if (o['mrtd'] !== undefined) p.mrTd = hexList(o['mrtd'], source, 'mrtd', 48);
  if (o['mrseam'] !== undefined) p.mrSeam = hexList(o['mrseam'], source, 'mrseam', 48);
  if (o['rtmr'] !== undefined) p.rtmr = indexMap(o['rtmr'], source, 'rtmr', 3, 48);
  if (o['min-tee-tcb-svn'] !== undefined) p.minTeeTcbSvn = hexValue(o['min-tee-tcb-svn'], source, 'min-tee-tcb-svn', 16);
  if (o['min-tcb'] !== undefined) {
    const t = o['min-tcb'];
    if (typeof t !== 'object' || t === null || Array.isArray(t)) invalid(source, 'min-tcb', 'must be a table { bootloader, tee, snp, microcode }');
    const r = t as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!['bootloader', 'tee', 'snp', 'microcode'].includes(k)) invalid(source, `min-tcb.${k}`, 'is not one of bootloader, tee, snp, microcode');
    const c = (k: string): number => (r[k] === undefined ? 0 : uint(r[k], source, `min-tcb.${k}`));
    p.minTcb = { bootloader: c('bootloader'), tee: c('tee'), snp: c('snp'), microcode: c('microcode') };
  }
  if (o['product'] !== undefined) {
    if (o['product'] !== 'Milan' && o['product'] !== 'Genoa') invalid(source, 'product', 'must be "Milan" or "Genoa"');
    p.product = o['product'] as string;
  }
  if (o['pcrs'] !== undefined) p.pcrs = indexMap(o['pcrs'], source, 'pcrs', 31, undefined);
  if (o['report-data'] !== undefined) p.reportData = hexValue(o['report-data'], source, 'report-data');
  if (o['nonce'] !== undefined) {
    if (p.kind !== undefined && p.kind !== 'nitro') invalid(source, 'nonce', 'applies to nitro documents only (other kinds carry freshness in report-data)');
    p.nonce = hexValue(o['nonce'], source, 'nonce');
  }
  if (o['accepted-tcb-statuses'] !== undefined) {
    const a = o['accepted-tcb-statuses'];
    if (!Array.isArray(a) || a.length === 0) invalid(source, 'accepted-tcb-statuses', 'must be a non-empty list');
    for (const [i, s] of (a as unknown[]).entries()) if (!(TCB_STATUSES as readonly unknown[]).includes(s)) invalid(source, `accepted-tcb-statuses[${i}]`, `must be one of ${TCB_STATUSES.join(', ')}`);
    p.acceptedTcbStatuses = a as string[];
  }
  if (o['allow-debug'] !== undefined) p.allowDebug = bool(o['allow-debug'], source, 'allow-debug');
  if (o['require-collateral'] !== undefined) p.requireCollateral = bool(o['require-collateral'], source, 'require-collateral');
  if (o['require-revocation-check'] !== undefined) p.requireRevocationCheck = bool(o['require-revocation-check'], source, 'require-revocation-check');
  if (o['allow-simulation'] !== undefined) p.allowSimulation = bool(o['allow-simulation'], source, 'allow-simulation');
  if (o['simulation-signers'] !== undefined) {
    const a = o['simulation-signers'];
    if (!Array.isArray(a) || a.some((x) => typeof x !== 'string')) invalid(source, 'simulation-signers', 'must be a list of identity fingerprints');
    p.simulationSigners = a as string[];
  }
  return p;
}

/**
 * Reads a policy file: TOML (`.toml`) or JSON (anything else).
 *
 * @example
 * ```ts
 * const policy = await loadPolicy('aggregator-policy.toml');
 * ```
 */
export async function loadPolicy(path: string, param = '--policy'): Promise<AttestationPolicy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_IO', `cannot read the policy file ${path}`, { param, cause: e });
  }
  let value: unknown;
  try {
    value = path.endsWith('.toml') ? parseTomlBounded(text, path, param) : JSON.parse(text);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${path} is not valid ${path.endsWith('.toml') ? 'TOML' : 'JSON'}: ${e instanceof Error ? e.message : String(e)}`, { param, cause: e });
  }
  return policyFromObject(value, path);
}

// ---- checks shared by every kind

/** Refuses when `actual` is not among `expected` (if the policy sets it). */
export function expectOneOf(actual: string, expected: readonly string[] | undefined, check: 'measurement' | 'signer' | 'pcr' | 'product', key: string, field: string): void {
  if (expected === undefined) return;
  if (!expected.includes(actual.toLowerCase())) {
    throw attestError('CIPHERML_E_ATTESTATION_POLICY', check, `${field} is ${actual}, the policy key ${key} expects ${expected.length === 1 ? expected[0]! : `one of ${expected.join(', ')}`}`, key);
  }
}

/** Refuses a debug-mode enclave unless the policy allows debug. */
export function expectNotDebug(debug: boolean, policy: AttestationPolicy, how: string): void {
  if (debug && !policy.allowDebug && checkEnabled('debug')) throw attestError('CIPHERML_E_ATTESTATION_DEBUG', 'debug', `the enclave runs in debug mode (${how}) and allow-debug is false`, 'allow-debug');
}

/** Compares report data with the policy's expectation, zero-padded to the field size. */
export function expectReportData(actual: Uint8Array, policy: AttestationPolicy, field: string, pad: boolean): void {
  if (policy.reportData === undefined || !checkEnabled('report-data')) return;
  const want = Buffer.from(policy.reportData, 'hex');
  if (pad && want.length > actual.length) throw attestError('CIPHERML_E_ATTESTATION_REPORT_DATA', 'report-data', `the policy's report-data is ${want.length} bytes, longer than the ${actual.length}-byte ${field}`, 'report-data');
  const full = pad ? Buffer.concat([want, Buffer.alloc(actual.length - want.length)]) : want;
  if (!bytesEqual(full, actual)) throw attestError('CIPHERML_E_ATTESTATION_REPORT_DATA', 'report-data', `${field} is ${hex(actual)}, not the expected ${hex(full)}`, 'report-data');
}

/** Refuses a TCB status the policy does not list. */
export function expectTcbStatus(status: string, policy: AttestationPolicy, what: string, advisories: readonly string[]): void {
  if (!policy.acceptedTcbStatuses.includes(status)) {
    throw attestError('CIPHERML_E_ATTESTATION_TCB', 'tcb-status', `${what} TCB status is ${status}${advisories.length > 0 ? ` (advisories ${advisories.join(', ')})` : ''}; accepted-tcb-statuses allows ${policy.acceptedTcbStatuses.join(', ')}`, 'accepted-tcb-statuses');
  }
}

/** Refuses a nonce expectation for kinds without a nonce field (it would otherwise go unchecked). */
export function expectNoNonce(policy: AttestationPolicy): void {
  if (policy.nonce !== undefined) throw attestError('CIPHERML_E_ATTESTATION_POLICY', 'nonce', 'the policy sets nonce, which only Nitro documents carry; put the challenge in report-data', 'nonce');
}

/** Refuses a policy written for another kind of document. */
export function expectKind(kind: AttestationKind, policy: AttestationPolicy): void {
  if (policy.kind !== undefined && policy.kind !== kind) throw attestError('CIPHERML_E_ATTESTATION_POLICY', 'kind', `the policy is for ${policy.kind} documents, this is a ${kind} document`, 'kind');
}
