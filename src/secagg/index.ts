/**
 * cipherml/secagg — secure aggregation (Bonawitz et al., CCS 2017): field and Shamir sharing,
 * X25519 key agreement and sealed boxes, the AES-CTR mask PRG with Z_{2^k} vector arithmetic,
 * quantization, the parameter rules (Bell et al. 2020), and the client/server state machines
 * (pw, stable-pw, secagg+; honest-but-curious or actively secure). The federated
 * runtime drives them with `--strategy secagg` (see docs/secagg.md).
 *
 * @example
 * ```ts
 * import { SecAggClient, SecAggServer } from 'cipherml/secagg';
 * const params = { mode: 'pw', roundId: 'r1', length: 3, modulusBits: 16, threshold: 2 } as const;
 * const server = new SecAggServer(params, { minClients: 3 });
 * const clients = ['a', 'b', 'c'].map((id) => new SecAggClient(id, params));
 * for (const c of clients) server.receive(c.advertise());
 * const roster = server.closeAdvertise();
 * for (const c of clients) server.receive(c.shareKeys(roster));
 * const inboxes = server.closeShareKeys();
 * for (const c of clients) server.receive(c.maskedInput(Uint32Array.of(1, 2, 3), inboxes.get(c.id)!));
 * const request = server.closeMaskedInput();
 * for (const c of clients) server.receive(c.unmask(request as never));
 * server.finish().sum; // Uint32Array [3, 6, 9]
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { FIELD_PRIME, FIELD_BYTES, fieldReduce, fieldAdd, fieldSub, fieldMul, fieldInv, randomFieldElement } from './field.ts';
export { MAX_SECRET_BYTES, MAX_SHARE_X, SHARE_BYTES, splitSecret, reconstructSecret, shareToBytes, shareFromBytes } from './shamir.ts';
export type { Share } from './shamir.ts';
export { X25519_KEY_BYTES, BOX_OVERHEAD_BYTES, generateX25519KeyPair, x25519PublicFromPrivate, agreeKey, sealBox, openBox } from './keys.ts';
export type { X25519KeyPair } from './keys.ts';
export { MAX_MASK_LENGTH, MASK_SEGMENT_WORDS, accumulateMask, accumulateMasks, aesCtrKeystream, expandMask, addMod, subMod, addModInPlace, reduceModInPlace, subModInPlace } from './prg.ts';
export { MAX_QUANTIZATION_RANGE, quantize, dequantizeSum, modulusBitsFor } from './quantize.ts';
export type { QuantizationSpec } from './quantize.ts';
export { SecAggClient, neighboursOf } from './protocol.ts';
export type { AdvertiseMsg, ConsistencyMsg, MaskedInputMsg, RevealMsg, RevealRequest, Roster, RosterEntry, SecAggClientOptions, SecAggMode, SecAggParams, ShareInbox, ShareKeysMsg, SurvivorCommitmentView, SurvivorSignature, UnmaskMsg, UnmaskRequest } from './protocol.ts';
export { SecAggServer } from './server.ts';
export type { SecAggResult, SecAggServerOptions } from './server.ts';
export {
  CORRECTNESS_BITS,
  DEFAULT_SECURITY_POLICY,
  checkAnnouncedParameters,
  checkSecurityPolicy,
  checkThreshold,
  completeGraphThreshold,
  privacyThreshold,
  secAggPlusDegree,
  secAggPlusParameters,
  seedCommitteeSize,
} from './params.ts';
export type { AnnouncedParameters, DerivedParameters, SecurityPolicy, ThresholdPolicy } from './params.ts';
export { ADVERTISE_CONTEXT, CONSISTENCY_CONTEXT, advertisePayload, commitmentPayload, consistencyPayload, deriveGraphSeed, graphNeighbours, graphSeedOf, revealLeaf, revealedGraphSeed, rosterLeaf, rosterTree, seedCommitment, seedCommittee, statusLeaf, survivorCommitment } from './graph.ts';
export type { GraphEntry, SurvivorStatus } from './graph.ts';
export { MerkleTree, leafHash, treeDepth, verifyMerkle } from './merkle.ts';
export { warmMaskPool } from './unmask.ts';
