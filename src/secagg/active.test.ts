import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/helpers.ts';
import { Roster, generateIdentity, publicIdentity, signMessage } from '../core/identity.ts';
import { CONSISTENCY_CONTEXT, consistencyPayload } from './graph.ts';
import { DEFAULT_SECURITY_POLICY } from './params.ts';
import { SecAggClient, type SecAggParams, type UnmaskRequest } from './protocol.ts';
import { SecAggServer } from './server.ts';

// The actively secure variant in memory (Bonawitz et al. 2017 §4): the message-level refusals.
// The same attacks over the real transport are in test/adversary/secagg-server.test.ts.

const ids = ['a', 'b', 'c', 'd', 'e'];
const identities = new Map(ids.map((id) => [id, generateIdentity('worker', id)]));
const peers = new Roster([...identities.values()].map((i) => publicIdentity(i)));

function round(roundId: string, opts: { inputBound?: number; inputs?: Uint32Array[] } = {}) {
  const params: SecAggParams = { mode: 'pw', roundId, length: 4, modulusBits: 16, threshold: 3 };
  const clients = ids.map((id) => new SecAggClient(id, params, { identity: identities.get(id)!, peers, policy: DEFAULT_SECURITY_POLICY }));
  const server = new SecAggServer(params, { minClients: 4, ...(opts.inputBound === undefined ? {} : { inputBound: opts.inputBound }) });
  for (const c of clients) server.receive(c.advertise());
  const roster = server.closeAdvertise();
  for (const c of clients) server.receive(c.shareKeys(roster));
  const inboxes = server.closeShareKeys();
  clients.forEach((c, i) => server.receive(c.maskedInput(opts.inputs?.[i] ?? Uint32Array.of(i, 1, 2, 3), inboxes.get(c.id)!)));
  const u3 = server.closeMaskedInput() as UnmaskRequest;
  return { params, clients, server, u3 };
}

describe('actively secure secure aggregation (signatures, consistency check)', () => {
  it('a full round: signed keys, consistency check over U3, exact sum', () => {
    const { clients, server, u3 } = round('r1');
    expect(server.active).toBe(true);
    for (const c of clients) server.receive(c.consistencyCheck(u3));
    const request = server.closeConsistency();
    expect(request.signatures).toHaveLength(5);
    for (const c of clients) server.receive(c.unmask(request));
    expect(Array.from(server.finish().sum)).toEqual([10, 5, 10, 15]);
  });

  it('refuses to unmask with fewer than t + 1 signatures, a replayed signature of another round, or without the check', () => {
    const { clients, u3 } = round('r2');
    expect(codeOf(() => clients[0]!.unmask(u3))).toBe('CIPHERML_E_PROTOCOL');
    const sigs = clients.map((c) => c.consistencyCheck(u3)).map((m) => ({ from: m.from, signature: m.signature }));
    expect(codeOf(() => clients[0]!.unmask({ ...u3, signatures: sigs.slice(0, 3) }))).toBe('CIPHERML_E_SECAGG_ABORTED');
    const replayed = sigs.map((s) => ({ from: s.from, signature: signMessage(identities.get(s.from)!, CONSISTENCY_CONTEXT, consistencyPayload('r-old', u3.survivors, u3.dropped)) }));
    expect(codeOf(() => clients[1]!.unmask({ ...u3, signatures: replayed }))).toBe('CIPHERML_E_SECAGG_ABORTED');
    const twice = [...sigs.slice(0, 3), sigs[0]!];
    expect(codeOf(() => clients[2]!.unmask({ ...u3, signatures: twice }))).toBe('CIPHERML_E_SECAGG_ABORTED');
    // A client answers at most one unmasking request, even after refusing one.
    expect(codeOf(() => clients[0]!.unmask({ ...u3, signatures: sigs }))).toBe('CIPHERML_E_PROTOCOL');
    expect(clients[3]!.unmask({ ...u3, signatures: sigs }).seedShares).toHaveLength(5);
  });

  it('refuses a roster naming an identity that is not pinned, and one without signatures', () => {
    const params: SecAggParams = { mode: 'pw', roundId: 'r3', length: 2, modulusBits: 8, threshold: 3 };
    const stranger = new SecAggClient('z', params);
    const clients = ids.map((id) => new SecAggClient(id, params, { identity: identities.get(id)!, peers }));
    const server = new SecAggServer(params, { minClients: 4 });
    for (const c of [...clients, stranger]) server.receive(c.advertise());
    const roster = server.closeAdvertise();
    expect(server.active).toBe(false);
    expect(codeOf(() => clients[0]!.shareKeys(roster))).toBe('CIPHERML_E_IDENTITY_UNKNOWN');
    const unsigned = { ...roster, entries: roster.entries.filter((e) => e.id !== 'z').map((e) => ({ ...e, signature: new Uint8Array(0) })) };
    expect(codeOf(() => clients[1]!.shareKeys(unsigned))).toBe('CIPHERML_E_SIGNATURE_INVALID');
  });

  it('slot integrity: a client input above Q − 1 makes the unmasked sum out of range, a typed error naming the round', () => {
    const inputs = [Uint32Array.of(1, 1, 1, 1), Uint32Array.of(1, 1, 1, 1), Uint32Array.of(1, 1, 1, 1), Uint32Array.of(1, 1, 1, 1), Uint32Array.of(1, 0x8000, 1, 1)];
    const { clients, server, u3 } = round('r4', { inputBound: 255, inputs });
    for (const c of clients) server.receive(c.consistencyCheck(u3));
    const request = server.closeConsistency();
    for (const c of clients) server.receive(c.unmask(request));
    let err: unknown;
    try {
      server.finish();
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CIPHERML_E_SECAGG_SUM_OUT_OF_RANGE', param: 'round', details: { round: 'r4', index: 1 } });
  });
});
