/**
 * Internal test hooks of the secure-aggregation protocol, for the adversarial suite only (never
 * exported from `cipherml/secagg`): `disableMasks` builds the deliberately broken protocol that
 * sends inputs unmasked (and has the server subtract nothing), so the privacy tests can show that
 * they fail against it.
 */
export const SECAGG_TEST_HOOKS: { disableMasks: boolean } = { disableMasks: false };
