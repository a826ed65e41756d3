/**
 * `cipherml/enclave`: the attested aggregator (issue 15) and the worker side of its attestation.
 * Simulation mode only on machines without a TEE, labelled "simulation: no hardware isolation".
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { ATTESTATION_PATH, EnclaveAggregator, TEE_KINDS, assertTeeAvailable, serveEnclave } from './aggregator.ts';
export type { AttestationBundle, EnclaveAggregatorOptions, EnclaveEvent, EnclaveListener, TeeKind } from './aggregator.ts';
export { attestAggregator, attestedTransport, attestedKey } from './attested-worker.ts';
export type { AttestedAggregator } from './attested-worker.ts';
export { EnclaveFedAvg } from './strategy.ts';
export type { EnclaveFedAvgOptions } from './strategy.ts';
export { enclaveTlsFromPem, generateEnclaveTls, spkiOf } from './tls.ts';
export type { EnclaveTls } from './tls.ts';
export { measureAggregator } from './measure.ts';
