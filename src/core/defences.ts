/**
 * Internal switches of the adversarial suite (test/adversary). Each one disables a single defence
 * so that the suite can show, in the same run, that the attack it plays succeeds without that
 * defence and fails with it. They are not exported from any package entry point, never read from
 * config, flags or environment, and default to the defence being on.
 */
export interface Defences {
  /** Workers refuse a Paillier key that is neither pinned nor signed by the pinned authority. */
  keyPinning: boolean;
  /** The key authority hands the secret key only to a roster worker whose signed request verifies. */
  keyRequestSignatures: boolean;
  /** The key authority decrypts only its own product of ≥ min-contributions signed contributions. */
  contributionFloor: boolean;
  /** Decrypted packed slots are checked against the range their contributions can produce. */
  slotRangeCheck: boolean;
  /** Workers encrypt their updates (off: they send them in the clear, as a broken build would). */
  encryptUpdates: boolean;
  /** A received Paillier key whose h_s has order 1 or 2 is refused. */
  keyBaseCheck: boolean;
  /** Workers refuse a server announcing a weaker strategy or key holder than configured. */
  announcementCheck: boolean;
  /** The threshold combiner verifies each holder's decryption-share proofs before combining (off: it combines the first k holders' shares unchecked). */
  thresholdShareProofs: boolean;
  /** Workers with --require-attestation verify the aggregator's document and its key binding before sending. */
  attestationCheck: boolean;
  /** The web console checks Origin and the session's X-CSRF-Token on state-changing requests. */
  consoleCsrf: boolean;
  /** The web console rate-limits failed sign-ins per name and per address. */
  consoleSignInLimit: boolean;
  /** Responses carry the console's Content-Security-Policy (no inline or foreign script). */
  consoleCsp: boolean;
  /** The service bounds evaluation-key and encrypted-input uploads by the model's keyparams (src/service/inference-routes.ts). */
  inferenceUploadBounds: boolean;
  /** The gateway's local HTTP server answers only requests whose Host is its own loopback address (DNS rebinding). */
  gatewayHostCheck: boolean;
  /** The gateway's local HTTP server answers only requests with its local bearer token. */
  gatewayToken: boolean;
  /** In identity mode the server refuses, on arrival, a Paillier update that is not a contribution signed by the roster worker who sent it. */
  signedUpdatesOnArrival: boolean;
  /** Actively secure SecAgg+ clients derive the graph seed from the committee's reveals, each opening its signed commitment (src/secagg/protocol.ts); off: they take the server's seed. */
  secaggSeedReveal: boolean;
}

const DEFAULTS: Defences = { keyPinning: true, keyRequestSignatures: true, contributionFloor: true, slotRangeCheck: true, encryptUpdates: true, keyBaseCheck: true, announcementCheck: true, thresholdShareProofs: true, attestationCheck: true, consoleCsrf: true, consoleSignInLimit: true, consoleCsp: true, inferenceUploadBounds: true, gatewayHostCheck: true, gatewayToken: true, signedUpdatesOnArrival: true, secaggSeedReveal: true };

/**
 * The live switches (mutated only by tests).
 *
 * @example
 * ```ts
 * defences.contributionFloor = false; // a test plays the Enc(0) padding attack against a broken build
 * try { … } finally { resetDefences(); }
 * ```
 */
export const defences: Defences = { ...DEFAULTS };

/** Turns every defence back on. */
export function resetDefences(): void {
  Object.assign(defences, DEFAULTS);
}
