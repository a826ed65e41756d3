import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/helpers.ts';
import { Roster as Identities, generateIdentity, publicIdentity } from '../core/identity.ts';
import { generateX25519KeyPair } from './keys.ts';
import { SecAggClient, type Roster, type SecAggParams, type UnmaskRequest } from './protocol.ts';
import { SecAggServer } from './server.ts';

// Actively secure SecAgg+ at its promised cost (Bell et al. 2020 §3; Bonawitz et al. 2017 §4
// checks): each client receives only its neighbourhood, with Merkle proofs against the roster
// commitment the graph seed derives from, and signs a commitment to every member's status.

const n = 40;
const ids = Array.from({ length: n }, (_, i) => `c${String(i).padStart(2, '0')}`);
const identities = new Map(ids.map((id) => [id, generateIdentity('worker', id)]));
const peers = new Identities([...identities.values()].map((i) => publicIdentity(i)));

function setup(roundId: string) {
  const params: SecAggParams = { mode: 'secagg+', roundId, length: 3, modulusBits: 16, threshold: 4 };
  const clients = ids.map((id) => new SecAggClient(id, params, { identity: identities.get(id)!, peers }));
  const server = new SecAggServer(params, { minClients: 5, degree: 6 });
  for (const c of clients) server.receive(c.advertise());
  server.closeAdvertise();
  // Commit–reveal of the graph seed: the committee the roster root selects reveals.
  for (const id of server.committee) server.receive(clients.find((c) => c.id === id)!.reveal(server.revealFor(id)));
  server.closeReveal();
  return { params, clients, server };
}

describe('actively secure SecAgg+ with neighbourhood views', () => {
  it('a full round with a dropout: each client receives k + 1 proven entries, signs the survivor commitment, exact sum', () => {
    const { clients, server } = setup('s1');
    expect(server.active).toBe(true);
    const view = server.rosterFor('c07');
    expect(view.entries).toHaveLength(7);
    expect(view.root).toHaveLength(32);
    for (const c of clients) server.receive(c.shareKeys(server.rosterFor(c.id)));
    const inboxes = server.closeShareKeys();
    for (const c of clients.slice(1)) server.receive(c.maskedInput(Uint32Array.of(1, 2, 3), inboxes.get(c.id)!));
    const u3 = server.closeMaskedInput() as UnmaskRequest;
    for (const c of clients.slice(1)) server.receive(c.consistencyCheck(server.requestFor(c.id, u3)));
    const request = server.closeConsistency();
    const local = server.requestFor('c07', request);
    expect(local.survivors.length + local.dropped.length).toBe(7);
    expect(local.signatures!.length).toBeLessThanOrEqual(7);
    for (const c of clients.slice(1)) server.receive(c.unmask(server.requestFor(c.id, request)));
    expect(Array.from(server.finish().sum)).toEqual([39, 78, 117]);
  });

  it('refuses a view with a substituted, missing, extra or moved neighbour, a forged proof, or a chosen seed', () => {
    const { clients, server } = setup('s2');
    const me = clients[7]!;
    const view = server.rosterFor(me.id);
    const other = server.rosterFor('c20').entries.find((e) => !view.entries.some((v) => v.id === e.id))!;
    const neighbour = view.entries.find((e) => e.id !== me.id)!;
    const fake = generateX25519KeyPair().publicKey;
    const bad: [string, Roster, string][] = [
      ['substituted keys (signed by nobody)', { ...view, entries: view.entries.map((e) => (e === neighbour ? { ...e, sPk: fake } : e)) }, 'CIPHERML_E_SIGNATURE_INVALID'],
      ['a neighbour left out', { ...view, entries: view.entries.filter((e) => e !== neighbour) }, 'CIPHERML_E_SECAGG_PARAMETER_REFUSED'],
      ['a non-neighbour added', { ...view, entries: [...view.entries, other] }, 'CIPHERML_E_SECAGG_PARAMETER_REFUSED'],
      ['a neighbour replaced by a non-neighbour', { ...view, entries: view.entries.map((e) => (e === neighbour ? other : e)) }, 'CIPHERML_E_SECAGG_PARAMETER_REFUSED'],
      ['a forged proof', { ...view, proof: view.proof!.map((p, i) => (i === 0 ? new Uint8Array(32) : p)) }, 'CIPHERML_E_SECAGG_PARAMETER_REFUSED'],
      ['no commitment', { roundId: view.roundId, entries: view.entries, degree: view.degree, graphSeed: view.graphSeed, clients: n }, 'CIPHERML_E_SECAGG_PARAMETER_REFUSED'],
      ['a seed the server chose', { ...view, graphSeed: '00'.repeat(32) }, 'CIPHERML_E_SECAGG_PARAMETER_REFUSED'],
      ['more clients than pinned identities', { ...view, clients: n + 1 }, 'CIPHERML_E_SECAGG_PARAMETER_REFUSED'],
    ];
    // A refusal leaves the client where it was (nothing shared): the same client tries each.
    for (const [what, roster, code] of bad) expect([what, codeOf(() => me.shareKeys(roster))]).toEqual([what, code]);
    expect(me.shareKeys(view).boxes).toHaveLength(7);
  });

  it('aborts when the statuses shown for its neighbourhood do not match the survivor commitment, or when the unmask request carries another commitment', () => {
    const { clients, server } = setup('s3');
    for (const c of clients) server.receive(c.shareKeys(server.rosterFor(c.id)));
    const inboxes = server.closeShareKeys();
    for (const c of clients.slice(1)) server.receive(c.maskedInput(Uint32Array.of(1, 2, 3), inboxes.get(c.id)!));
    const u3 = server.closeMaskedInput() as UnmaskRequest;
    // A neighbour of c00 (which dropped) is told c00 survived: the proof no longer fits.
    const victim = clients.find((c) => c.id !== 'c00' && server.requestFor(c.id, u3).dropped.includes('c00'))!;
    const mine = server.requestFor(victim.id, u3);
    const lie = { ...mine, survivors: [...mine.survivors, 'c00'], dropped: mine.dropped.filter((d) => d !== 'c00') };
    expect(codeOf(() => victim.consistencyCheck(lie))).toBe('CIPHERML_E_SECAGG_ABORTED');
    // A client that signed one commitment refuses to unmask under another.
    const honest = clients[5]!;
    const view = server.requestFor(honest.id, u3);
    const sig = honest.consistencyCheck(view);
    const other = { ...view, commitment: { ...view.commitment!, holders: view.commitment!.holders - 1 } };
    expect(codeOf(() => honest.unmask({ ...other, signatures: [{ from: honest.id, signature: sig.signature }] }))).toBe('CIPHERML_E_SECAGG_ABORTED');
  });
});
