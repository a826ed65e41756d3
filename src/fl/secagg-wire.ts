import { CipherMLError } from '../core/errors.ts';
import type { RevealRequest, Roster, RosterEntry, UnmaskRequest } from '../secagg/index.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { SecAggRevealRequest, SecAggRevealRequestSchema, SecAggRoster, SecAggRosterEntry, SecAggRosterSchema, SecAggStageResult, SecAggUnmaskRequest, SecAggUnmaskRequestSchema } from './gen/cipherml/fl/v1/fl_pb.ts';

/**
 * Wire forms of the secure-aggregation messages (proto/cipherml/fl/v1/fl.proto, SecAgg*): the
 * runtime carries these; the protocol lives in src/secagg and src/fl/secagg*.ts.
 */

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Length-checked uint32 little-endian decoding of a masked vector.
 *
 * @example
 * ```ts
 * maskedFromWire(bytes, 3, 'masked input from w1'); // Uint32Array(3)
 * ```
 */
export function maskedFromWire(bytes: Uint8Array, length: number, param: string): Uint32Array {
  if (bytes.length !== length * 4) {
    throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `masked input has ${bytes.length} bytes, expected ${length * 4} (${length} uint32 values)`, { param });
  }
  if (LITTLE_ENDIAN) return new Uint32Array(bytes.slice().buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Uint32Array.from({ length }, (_, i) => view.getUint32(i * 4, true));
}

/**
 * uint32 values → little-endian bytes.
 *
 * @example
 * ```ts
 * maskedToWire(Uint32Array.of(1)); // Uint8Array [1, 0, 0, 0]
 * ```
 */
export function maskedToWire(values: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(i * 4, v, true));
  return out;
}

/**
 * Roster → wire.
 *
 * @example
 * ```ts
 * create(SecAggStageTaskSchema, { roundId, stage: { case: 'roster', value: rosterToWire(roster) } });
 * ```
 */
export function rosterToWire(r: Roster): MessageInitShape<typeof SecAggRosterSchema> {
  const entry = (e: RosterEntry) => ({ id: e.id, x: e.x, cPk: e.cPk, sPk: e.sPk, signature: e.signature, commitment: e.commitment ?? new Uint8Array(0) });
  return {
    entries: r.entries.map(entry),
    degree: r.degree,
    graphSeed: r.graphSeed,
    clients: r.clients ?? 0,
    root: r.root ?? new Uint8Array(0),
    proof: [...(r.proof ?? [])],
    committee: (r.committee ?? []).map(entry),
    reveals: [...(r.reveals ?? [])],
  };
}

function entryFromWire(e: SecAggRosterEntry): RosterEntry {
  return { id: e.id, x: e.x, cPk: e.cPk, sPk: e.sPk, signature: e.signature, ...(e.commitment.length === 0 ? {} : { commitment: e.commitment }) };
}

/** Wire → roster of `roundId`. */
export function rosterFromWire(roundId: string, w: SecAggRoster): Roster {
  const entries = w.entries.map(entryFromWire);
  const committee = w.committee.length === 0 && w.reveals.length === 0 ? {} : { committee: w.committee.map(entryFromWire), reveals: w.reveals };
  return { roundId, entries, degree: w.degree, graphSeed: w.graphSeed, ...(w.clients === 0 ? {} : { clients: w.clients }), ...(w.root.length === 0 ? {} : { root: w.root, proof: w.proof }), ...committee };
}

/**
 * Commit–reveal request → wire.
 *
 * @example
 * ```ts
 * create(SecAggStageTaskSchema, { roundId, stage: { case: 'reveal', value: revealRequestToWire(server.revealFor(id)) } });
 * ```
 */
export function revealRequestToWire(r: RevealRequest): MessageInitShape<typeof SecAggRevealRequestSchema> {
  return { clients: r.clients, root: r.root, x: r.x, proof: [...r.proof], committee: r.committee };
}

/** Wire → commit–reveal request of `roundId`. */
export function revealRequestFromWire(roundId: string, w: SecAggRevealRequest): RevealRequest {
  return { roundId, clients: w.clients, root: w.root, x: w.x, proof: w.proof, committee: w.committee };
}

/** Survivor request → wire. */
export function requestToWire(r: UnmaskRequest): MessageInitShape<typeof SecAggUnmaskRequestSchema> {
  const c = r.commitment;
  return {
    survivors: [...r.survivors],
    dropped: [...r.dropped],
    signatures: (r.signatures ?? []).map((s) => ({ from: s.from, signature: s.signature })),
    ...(c === undefined ? {} : { commitment: { clients: c.clients, holders: c.holders, survivors: c.survivors, root: c.root, proof: [...c.proof] } }),
  };
}

/** Wire → survivor request of `roundId`. */
export function requestFromWire(roundId: string, w: SecAggUnmaskRequest): UnmaskRequest {
  const c = w.commitment;
  return {
    roundId,
    survivors: [...w.survivors],
    dropped: [...w.dropped],
    signatures: w.signatures.map((s) => ({ from: s.from, signature: s.signature })),
    ...(c === undefined ? {} : { commitment: { clients: c.clients, holders: c.holders, survivors: c.survivors, root: c.root, proof: c.proof } }),
  };
}

/**
 * Payload bytes of a stage answer (boxes, masked values, shares, signature), for progress and
 * byte accounting.
 *
 * @example
 * ```ts
 * secAggResultBytes(result); // e.g. 4 · length for a masked input
 * ```
 */
export function secAggResultBytes(r: SecAggStageResult): number {
  const st = r.stage;
  switch (st.case) {
    case 'shareKeys':
      return st.value.boxes.reduce((a, b) => a + b.box.length, 0);
    case 'maskedInput':
      return st.value.masked.length;
    case 'unmask':
      return [...st.value.keyShares, ...st.value.seedShares].reduce((a, s) => a + s.share.length, 0);
    case 'consistency':
      return st.value.signature.length;
    case 'reveal':
      return st.value.reveal.length;
    default:
      return 0;
  }
}
