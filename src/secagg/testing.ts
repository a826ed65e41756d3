/**
 * Internal test hooks of the secure-aggregation protocol, for the adversarial suite only (never
 * exported from `cipherml/secagg`). Each builds a deliberately broken protocol so the suite can
 * show that its tests fail without the defence they test:
 * - `disableMasks`: clients send their inputs unmasked and the server subtracts nothing;
 * - `disableChecks`: clients skip every check of what the server announces (signatures on the
 *   roster, graph seed, threshold, degree, |U2| ≥ t + 1, the consistency check's signatures);
 * - `disableRangeCheck`: the server accepts an unmasked sum outside the honest range;
 * - `onQuantized`: sees (and may change, playing a malicious client) each worker's quantized
 *   input before it is masked.
 */
export const SECAGG_TEST_HOOKS: {
  disableMasks: boolean;
  disableChecks: boolean;
  disableRangeCheck: boolean;
  onQuantized: ((workerId: string, roundId: string, input: Uint32Array) => void) | null;
} = { disableMasks: false, disableChecks: false, disableRangeCheck: false, onQuantized: null };
