import type { AttestCheck } from './fail.ts';
import type { AttestationKind } from './policy.ts';

/** Printed with every field of a simulation report. */
export const SIMULATION_LABEL = 'simulation: no hardware isolation';

/** What a verified document says, and which checks it passed. */
export interface AttestationResult {
  readonly kind: AttestationKind;
  readonly verified: true;
  /** The verification time used (ISO 8601). */
  readonly at: string;
  /** The kind's main measurement (MRENCLAVE, MRTD, MEASUREMENT, PCR0, bundle digest). */
  readonly measurement: string;
  readonly reportData: string;
  readonly debug: boolean;
  readonly securityVersions: Readonly<Record<string, number | string>>;
  /** Intel TCB status, or `not-evaluated` when no collateral applies. */
  readonly tcbStatus: string;
  readonly advisoryIds: readonly string[];
  /** Further extracted fields, hex or numbers. */
  readonly fields: Readonly<Record<string, string | number | boolean>>;
  readonly checks: readonly AttestCheck[];
  readonly simulation: boolean;
  /** `hardware: <vendor>` or {@link SIMULATION_LABEL}. */
  readonly isolation: string;
}
