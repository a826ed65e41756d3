import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { codeOf } from '../../test/helpers.ts';
import { defences, resetDefences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import { Roster as Identities, generateIdentity, publicIdentity } from '../core/identity.ts';
import { graphNeighbours, revealedGraphSeed, rosterTree, seedCommitment, seedCommittee } from './graph.ts';
import { DEFAULT_SECURITY_POLICY, seedCommitteeSize } from './params.ts';
import { SecAggClient, type Roster, type RosterEntry, type SecAggParams, type UnmaskRequest } from './protocol.ts';
import { SecAggServer } from './server.ts';

// Commit–reveal of the SecAgg+ graph seed (docs/secagg.md "Grinding"): each advertisement signs
// c = H(round, id, r); the roster root fixes U1 and selects a committee; the committee reveals r
// only after checking its own leaf; every client checks every committee reveal against its signed
// commitment and recomputes seed = H(round, |U1|, root, reveal root).

const n = 24;
const ids = Array.from({ length: n }, (_, i) => `c${String(i).padStart(2, '0')}`);
const identities = new Map(ids.map((id) => [id, generateIdentity('worker', id)]));
const peers = new Identities([...identities.values()].map((i) => publicIdentity(i)));

function advertised(roundId: string, committee = 5) {
  const params: SecAggParams = { mode: 'secagg+', roundId, length: 3, modulusBits: 16, threshold: 3, seedCommittee: committee };
  const clients = ids.map((id) => new SecAggClient(id, params, { identity: identities.get(id)!, peers }));
  const server = new SecAggServer(params, { minClients: 4, degree: 6 });
  for (const c of clients) server.receive(c.advertise());
  const roster = server.closeAdvertise();
  const byId = new Map(clients.map((c) => [c.id, c]));
  return { params, clients, byId, server, roster };
}

function revealed(roundId: string, committee = 5) {
  const s = advertised(roundId, committee);
  for (const id of s.server.committee) s.server.receive(s.byId.get(id)!.reveal(s.server.revealFor(id)));
  return { ...s, roster: s.server.closeReveal() };
}

/** A view for `id` built by a malicious server under `seed`, with the committee and reveals it chooses (valid proofs). */
function viewUnder(whole: Roster, id: string, seed: string, committee: readonly RosterEntry[], reveals: readonly Uint8Array[]): Roster {
  const me = whole.entries.find((e) => e.id === id)!;
  const xs = new Set([me.x, ...graphNeighbours(me.x, whole.entries.length, whole.degree, seed)]);
  const entries = whole.entries.filter((e) => xs.has(e.x));
  const proof = rosterTree(whole.entries).prove([...[...xs].map((x) => x - 1), ...committee.map((e) => e.x - 1)]);
  return { roundId: whole.roundId, entries, degree: whole.degree, graphSeed: seed, clients: whole.entries.length, root: whole.root!, proof, committee, reveals };
}

function refusal(f: () => unknown): { code: string; param: string | undefined } {
  try {
    f();
  } catch (e) {
    if (e instanceof CipherMLError) return { code: e.code, param: e.param };
    throw e;
  }
  return { code: 'none', param: undefined };
}

describe('SecAgg+ graph seed by commit–reveal', () => {
  it('an honest round: the root selects the committee, its reveals fix the seed every client recomputes, exact sum', () => {
    const { clients, server, roster } = revealed('r1');
    expect(server.committee).toHaveLength(5);
    expect(roster.committee!.map((e) => e.x)).toEqual(seedCommittee('r1', n, roster.root!, 5));
    expect(roster.graphSeed).toBe(revealedGraphSeed('r1', n, roster.root!, roster.committee!.map((e, i) => ({ x: e.x, id: e.id, reveal: roster.reveals![i]! }))));
    const view = server.rosterFor('c03');
    expect(view.committee).toHaveLength(5);
    for (const c of clients) server.receive(c.shareKeys(server.rosterFor(c.id)));
    const inboxes = server.closeShareKeys();
    for (const c of clients) server.receive(c.maskedInput(Uint32Array.of(1, 2, 3), inboxes.get(c.id)!));
    const u3 = server.closeMaskedInput() as UnmaskRequest;
    for (const c of clients) server.receive(c.consistencyCheck(server.requestFor(c.id, u3)));
    const request = server.closeConsistency();
    for (const c of clients) server.receive(c.unmask(server.requestFor(c.id, request)));
    expect(Array.from(server.finish().sum)).toEqual([n, 2 * n, 3 * n]);
  });

  it('refuses a view whose committee reveal is altered, missing, or whose seed the server chose after the reveals (secagg-graph-seed)', () => {
    const { clients, server, roster } = revealed('r2');
    const committee = roster.committee!;
    const reveals = roster.reveals!;
    const altered = reveals.map((r, i) => (i === 2 ? Uint8Array.from(r, (b, j) => (j === 0 ? b ^ 1 : b)) : r));
    const seedOf = (c: readonly RosterEntry[], r: readonly Uint8Array[]) => revealedGraphSeed('r2', n, roster.root!, c.map((e, i) => ({ x: e.x, id: e.id, reveal: r[i]! })));
    const me = clients.find((c) => !server.committee.includes(c.id))!;
    const cases: [string, Roster][] = [
      ['one reveal altered (seed derived from the altered reveals)', viewUnder(roster, me.id, seedOf(committee, altered), committee, altered)],
      ['the last reveal omitted', viewUnder(roster, me.id, seedOf(committee.slice(0, 4), reveals.slice(0, 4)), committee, reveals.slice(0, 4))],
      ['a middle reveal omitted', viewUnder(roster, me.id, seedOf(committee, reveals), committee, reveals.filter((_, i) => i !== 1))],
      ['the last member and its reveal omitted', viewUnder(roster, me.id, seedOf(committee.slice(0, 4), reveals.slice(0, 4)), committee.slice(0, 4), reveals.slice(0, 4))],
      ['a seed chosen after the reveals', viewUnder(roster, me.id, 'ab'.repeat(32), committee, reveals)],
      ['a committee member replaced by a non-member', viewUnder(roster, me.id, roster.graphSeed, committee.map((e, i) => (i === 0 ? roster.entries.find((x) => !server.committee.includes(x.id))! : e)), reveals)],
    ];
    for (const [what, view] of cases) expect([what, refusal(() => me.shareKeys(view))]).toEqual([what, { code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', param: 'secagg-graph-seed' }]);
    expect(me.shareKeys(server.rosterFor(me.id)).boxes).toHaveLength(7);
  });

  it('the broken build (defences.secaggSeedReveal off) takes the server\'s seed: the same attacks then pass', () => {
    const { clients, server, roster } = revealed('r3');
    const me = clients.find((c) => !server.committee.includes(c.id))!;
    const chosen = viewUnder(roster, me.id, 'cd'.repeat(32), roster.committee!, roster.reveals!);
    expect(codeOf(() => me.shareKeys(chosen))).toBe('CIPHERML_E_SECAGG_PARAMETER_REFUSED');
    defences.secaggSeedReveal = false;
    try {
      expect(me.shareKeys(chosen).boxes.map((b) => b.to).sort()).toEqual(chosen.entries.map((e) => e.id).sort());
    } finally {
      resetDefences();
    }
  });

  it('a committee member reveals once, only for a root holding its own signed leaf at a committee position, and then refuses views under another root', () => {
    const { byId, server, roster } = advertised('r4');
    const memberId = server.committee[0]!;
    const member = byId.get(memberId)!;
    const req = server.revealFor(memberId);
    const outsider = roster.entries.find((e) => !server.committee.includes(e.id))!;
    const outsiderReq = { ...req, x: outsider.x, proof: rosterTree(roster.entries).prove([outsider.x - 1]) };
    expect(refusal(() => member.reveal({ ...req, proof: req.proof.map((p, i) => (i === 0 ? new Uint8Array(32) : p)) }))).toEqual({ code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', param: 'roster' });
    expect(refusal(() => member.reveal({ ...req, committee: 4 }))).toEqual({ code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', param: 'secagg-graph-seed' });
    expect(refusal(() => byId.get(outsider.id)!.reveal(outsiderReq))).toEqual({ code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', param: 'secagg-graph-seed' });
    expect(refusal(() => member.reveal({ ...req, clients: n + 1 }))).toEqual({ code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', param: 'roster' });
    const msg = member.reveal(req);
    expect(Buffer.from(seedCommitment('r4', memberId, msg.reveal)).equals(Buffer.from(roster.entries.find((e) => e.id === memberId)!.commitment!))).toBe(true);
    expect(codeOf(() => member.reveal(req))).toBe('CIPHERML_E_PROTOCOL');
    for (const id of server.committee) if (id !== memberId) server.receive(byId.get(id)!.reveal(server.revealFor(id)));
    server.receive(msg);
    server.closeReveal();
    // The server re-forms U1 without one client after seeing the reveals: another root.
    const others = roster.entries.filter((e) => e.id !== outsider.id).map((e, i) => ({ ...e, x: i + 1 }));
    const reformed = { ...roster, entries: others, root: rosterTree(others).root };
    expect(refusal(() => member.shareKeys(viewUnder(reformed, memberId, roster.graphSeed, [], [])))).toEqual({ code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', param: 'secagg-graph-seed' });
    const view = server.rosterFor(memberId);
    expect(member.shareKeys(view).boxes).toHaveLength(7);
  });

  it('the server refuses a reveal that does not open its commitment, and aborts the attempt (CIPHERML_E_ROUND_FAILED) when a committee member drops between commit and reveal', () => {
    const { byId, server } = advertised('r5');
    const [first, second, ...rest] = server.committee;
    const good = byId.get(first!)!.reveal(server.revealFor(first!));
    expect(codeOf(() => server.receive({ ...good, from: second! }))).toBe('CIPHERML_E_PROTOCOL');
    server.receive(good);
    for (const id of rest) server.receive(byId.get(id)!.reveal(server.revealFor(id)));
    const err = refusal(() => server.closeReveal());
    expect(err.code).toBe('CIPHERML_E_ROUND_FAILED');
    expect(codeOf(() => server.rosterFor(first!))).toBe('CIPHERML_E_PROTOCOL');
  });

  it('refuses a round whose committee size is below the client\'s γ^m ≤ 2^-σ', () => {
    const params: SecAggParams = { mode: 'secagg+', roundId: 'r6', length: 1, modulusBits: 16, threshold: 3, seedCommittee: 2 };
    const policy = { corruptFraction: 0.1, dropoutRate: 0.01, statisticalSecurity: 10, collusion: false };
    expect(seedCommitteeSize(n, policy)).toBe(4);
    // c00 holds γ = 0.1, σ = 10 (m ≥ 4); the others no policy.
    const clients = ids.map((id) => new SecAggClient(id, params, { identity: identities.get(id)!, peers, ...(id === 'c00' ? { policy } : {}) }));
    const server = new SecAggServer(params, { minClients: 4, degree: 6 });
    for (const c of clients) server.receive(c.advertise());
    server.closeAdvertise();
    for (const id of server.committee) server.receive(clients.find((c) => c.id === id)!.reveal(server.revealFor(id)));
    server.closeReveal();
    expect(refusal(() => clients[0]!.shareKeys(server.rosterFor('c00')))).toEqual({ code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', param: 'secagg-graph-seed' });
    expect(clients[1]!.shareKeys(server.rosterFor('c01')).boxes).toHaveLength(7);
  });

  it('property: the committee is m distinct coordinates of 1..n fixed by the root; any one flipped reveal bit changes the seed and is refused', () => {
    expect(seedCommitteeSize(1000, DEFAULT_SECURITY_POLICY)).toBe(26);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 40 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (size, m, root) => {
        const xs = seedCommittee('p', size, root, m);
        expect(xs).toHaveLength(Math.min(m, size));
        expect(new Set(xs).size).toBe(xs.length);
        expect(xs.every((x) => x >= 1 && x <= size)).toBe(true);
        expect(seedCommittee('p', size, root, m)).toEqual(xs);
      }),
      { numRuns: 60 },
    );
    const { clients, server, roster } = revealed('r7', 4);
    const me = clients.find((c) => !server.committee.includes(c.id))!;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }), (member, bit) => {
        const reveals = roster.reveals!.map((r, i) => (i === member ? Uint8Array.from(r, (b, j) => (j === bit >> 3 ? b ^ (1 << (bit & 7)) : b)) : r));
        const seed = revealedGraphSeed('r7', n, roster.root!, roster.committee!.map((e, i) => ({ x: e.x, id: e.id, reveal: reveals[i]! })));
        expect(seed).not.toBe(roster.graphSeed);
        expect(refusal(() => me.shareKeys(viewUnder(roster, me.id, seed, roster.committee!, reveals)))).toEqual({ code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', param: 'secagg-graph-seed' });
      }),
      { numRuns: 40 },
    );
  });
});
