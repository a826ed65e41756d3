import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { codeOf } from '../../test/helpers.ts';
import { checkThreshold, secAggPlusDegree } from './params.ts';
import { SecAggClient, neighboursOf, type SecAggMode, type SecAggParams, type UnmaskRequest } from './protocol.ts';
import { SecAggServer, type SecAggResult } from './server.ts';

type Stage = 'advertise' | 'share-keys' | 'masked-input' | 'unmask';

interface RunOptions {
  readonly n: number;
  readonly threshold: number;
  readonly mode: SecAggMode;
  readonly length: number;
  readonly bits: number;
  /** Client index → the stage at which it drops (sends nothing from then on). */
  readonly drops?: ReadonlyMap<number, Stage>;
  readonly degree?: number;
  readonly seed?: number;
}

function inputs(n: number, length: number, bits: number, seed: number): Uint32Array[] {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  return Array.from({ length: n }, () => Uint32Array.from({ length }, () => (bits === 32 ? next() : next() & ((1 << bits) - 1)) >>> 0));
}

/** Runs one round in memory; returns the result and the inputs of the clients whose input must be in the sum. */
function run(o: RunOptions): { result: SecAggResult; expected: Uint32Array } {
  const params: SecAggParams = { mode: o.mode, roundId: `r-${o.seed ?? 0}`, length: o.length, modulusBits: o.bits, threshold: o.threshold };
  const ids = Array.from({ length: o.n }, (_, i) => `c${String(i).padStart(3, '0')}`);
  const xs = inputs(o.n, o.length, o.bits, o.seed ?? 1);
  const clients = ids.map((id) => new SecAggClient(id, params));
  const server = new SecAggServer(params, { minClients: o.threshold + 1, ...(o.degree === undefined ? {} : { degree: o.degree }) });
  const alive = (i: number, stage: Stage) => {
    const d = o.drops?.get(i);
    const order: Stage[] = ['advertise', 'share-keys', 'masked-input', 'unmask'];
    return d === undefined || order.indexOf(stage) < order.indexOf(d);
  };
  clients.forEach((c, i) => alive(i, 'advertise') && server.receive(c.advertise()));
  const roster = server.closeAdvertise();
  const inRoster = (i: number) => roster.entries.some((e) => e.id === ids[i]);
  let inboxes = new Map<string, { roundId: string; holders: readonly string[]; boxes: readonly { from: string; box: Uint8Array }[] }>();
  if (o.mode !== 'stable-pw') {
    clients.forEach((c, i) => inRoster(i) && alive(i, 'share-keys') && server.receive(c.shareKeys(server.rosterFor(c.id))));
    inboxes = server.closeShareKeys();
  } else {
    clients.forEach((c, i) => inRoster(i) && c.shareKeys(server.rosterFor(c.id)));
  }
  const sent = new Set<number>();
  clients.forEach((c, i) => {
    const inbox = o.mode === 'stable-pw' ? { roundId: params.roundId, holders: [], boxes: [] } : inboxes.get(ids[i]!);
    if (inbox !== undefined && inRoster(i) && alive(i, 'masked-input')) {
      server.receive(c.maskedInput(xs[i]!, inbox));
      sent.add(i);
    }
  });
  const closed = server.closeMaskedInput();
  let result: SecAggResult;
  if ('sum' in closed) result = closed;
  else {
    clients.forEach((c, i) => sent.has(i) && alive(i, 'unmask') && server.receive(c.unmask(server.requestFor(c.id, closed))));
    result = server.finish();
  }
  const expected = new Uint32Array(o.length);
  const mask = o.bits === 32 ? 0xffffffff : (1 << o.bits) - 1;
  for (const i of sent) xs[i]!.forEach((v, j) => (expected[j] = ((expected[j]! + v) & mask) >>> 0));
  return { result, expected };
}

describe('secure aggregation protocol (Bonawitz et al. 2017)', () => {
  it('the unmasked sum equals the plain sum exactly, in every mode (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 7 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 32 }), fc.constantFrom<SecAggMode>('pw', 'stable-pw', 'secagg+'), fc.integer(), (n, length, bits, mode, seed) => {
        const threshold = Math.floor(n / 2);
        const { result, expected } = run({ n, threshold, mode, length, bits, seed });
        expect(Array.from(result.sum)).toEqual(Array.from(expected));
      }),
      { numRuns: 40 },
    );
  });

  it('SecAgg+ with 30 clients and degree 6: exact sum; each client shares with its 6 neighbours only', () => {
    const { result, expected } = run({ n: 30, threshold: 4, mode: 'secagg+', length: 50, bits: 20, degree: 6 });
    expect(Array.from(result.sum)).toEqual(Array.from(expected));
    expect(secAggPlusDegree(1000)).toBe(116);
  });

  it('SecAgg+ (honest-but-curious) sends each client only its neighbourhood: k + 1 roster entries, local holders and survivors', () => {
    const params: SecAggParams = { mode: 'secagg+', roundId: 'view', length: 3, modulusBits: 16, threshold: 3 };
    const ids = Array.from({ length: 40 }, (_, i) => `c${String(i).padStart(2, '0')}`);
    const clients = ids.map((id) => new SecAggClient(id, params));
    const server = new SecAggServer(params, { minClients: 4, degree: 6 });
    for (const c of clients) server.receive(c.advertise());
    server.closeAdvertise();
    const view = server.rosterFor('c07');
    expect(view.entries).toHaveLength(7);
    expect(view.clients).toBe(40);
    for (const c of clients) server.receive(c.shareKeys(server.rosterFor(c.id)));
    const inboxes = server.closeShareKeys();
    expect(inboxes.get('c07')!.holders).toHaveLength(7);
    for (const c of clients.slice(1)) server.receive(c.maskedInput(Uint32Array.of(1, 2, 3), inboxes.get(c.id)!));
    const request = server.closeMaskedInput() as UnmaskRequest;
    const local = server.requestFor('c07', request);
    expect(local.survivors.length + local.dropped.length).toBe(7);
    for (const c of clients.slice(1)) server.receive(c.unmask(server.requestFor(c.id, request)));
    expect(Array.from(server.finish().sum)).toEqual([39, 78, 117]);
    // A view announcing more clients than MAX_ROUND_CLIENTS (the client would build that ring) is refused.
    const greedy = new SecAggClient('c03', { ...params, roundId: 'huge' });
    const a = greedy.advertise();
    const huge = { roundId: 'huge', entries: [{ id: 'c03', x: 1, cPk: a.cPk, sPk: a.sPk, signature: a.signature }], degree: 6, graphSeed: view.graphSeed, clients: 2 ** 21 };
    expect(codeOf(() => greedy.shareKeys(huge))).toBe('CIPHERML_E_PROTOCOL');
    // A view that does not list the client with its own keys is refused.
    const pw = new SecAggClient('c07', { ...params, roundId: 'view' });
    pw.advertise();
    expect(codeOf(() => pw.shareKeys({ ...view }))).toBe('CIPHERML_E_PROTOCOL');
  });

  it('SecAgg+ neighbourhoods are symmetric and of the requested degree', () => {
    const entries = Array.from({ length: 20 }, (_, i) => ({ id: `c${i}`, x: i + 1, cPk: new Uint8Array(32), sPk: new Uint8Array(32), signature: new Uint8Array(0) }));
    const roster = { roundId: 'r', entries, degree: 6, graphSeed: 'ab'.repeat(32) };
    for (const e of entries) {
      const ns = neighboursOf(e.id, roster, 'secagg+');
      expect(ns).toHaveLength(6);
      for (const v of ns) expect(neighboursOf(v, roster, 'secagg+')).toContain(e.id);
    }
  });

  for (const stage of ['advertise', 'share-keys', 'masked-input', 'unmask'] as const) {
    it(`dropouts at "${stage}" up to n − (t + 1) give the exact sum of the survivors; one more fails the round`, () => {
      const n = 7;
      const threshold = 3;
      const maxDrops = n - (threshold + 1);
      const drops = new Map(Array.from({ length: maxDrops }, (_, i) => [i * 2, stage] as const));
      const { result, expected } = run({ n, threshold, mode: 'pw', length: 16, bits: 24, drops, seed: 7 });
      expect(Array.from(result.sum)).toEqual(Array.from(expected));
      const tooMany = new Map([...drops, [5, stage] as const]);
      expect(codeOf(() => run({ n, threshold, mode: 'pw', length: 16, bits: 24, drops: tooMany, seed: 7 }))).toBe('CIPHERML_E_ROUND_FAILED');
    });
  }

  it('dropouts spread over several stages still give the survivors sum', () => {
    const drops = new Map<number, Stage>([
      [0, 'share-keys'],
      [3, 'masked-input'],
      [6, 'unmask'],
    ]);
    const { result, expected } = run({ n: 9, threshold: 4, mode: 'pw', length: 10, bits: 32, drops });
    expect(Array.from(result.sum)).toEqual(Array.from(expected));
    expect(result.dropped).toEqual(['c003']);
  });

  it('stable-pw cannot absorb a dropout: the round fails, never a wrong sum', () => {
    expect(codeOf(() => run({ n: 4, threshold: 2, mode: 'stable-pw', length: 5, bits: 16, drops: new Map([[1, 'masked-input']]) }))).toBe('CIPHERML_E_ROUND_FAILED');
  });

  describe('refusals', () => {
    const params: SecAggParams = { mode: 'pw', roundId: 'r1', length: 4, modulusBits: 16, threshold: 2 };
    const setup = () => {
      const clients = ['a', 'b', 'c', 'd'].map((id) => new SecAggClient(id, params));
      const server = new SecAggServer(params, { minClients: 3 });
      const adverts = clients.map((c) => c.advertise());
      adverts.forEach((m) => server.receive(m));
      const roster = server.closeAdvertise();
      const shares = clients.map((c) => c.shareKeys(roster));
      shares.forEach((m) => server.receive(m));
      const inboxes = server.closeShareKeys();
      const masked = clients.map((c) => c.maskedInput(Uint32Array.of(1, 2, 3, 4), inboxes.get(c.id)!));
      return { clients, server, adverts, roster, shares, inboxes, masked };
    };

    it('a client refuses to reveal both shares of one peer, and a second unmasking request', () => {
      const { clients } = setup();
      const both: UnmaskRequest = { roundId: 'r1', survivors: ['a', 'b', 'c', 'd'], dropped: ['d'] };
      expect(codeOf(() => clients[0]!.unmask(both))).toBe('CIPHERML_E_PROTOCOL');
      expect(codeOf(() => clients[0]!.unmask({ roundId: 'r1', survivors: ['b', 'c', 'd'], dropped: [] }))).toBe('CIPHERML_E_PROTOCOL');
      const ok = clients[0]!.unmask({ roundId: 'r1', survivors: ['a', 'b', 'c'], dropped: ['d'] });
      expect(ok.keyShares.map((s) => s.of)).toEqual(['d']);
      expect(ok.seedShares.map((s) => s.of).sort()).toEqual(['a', 'b', 'c']);
      expect(codeOf(() => clients[0]!.unmask({ roundId: 'r1', survivors: ['a', 'b', 'c', 'd'], dropped: [] }))).toBe('CIPHERML_E_PROTOCOL');
    });

    it('the server rejects replayed, out-of-stage and other-round messages, and a masked vector of the wrong length', () => {
      const { server, adverts, shares, masked } = setup();
      expect(codeOf(() => server.receive(adverts[0]!))).toBe('CIPHERML_E_PROTOCOL');
      expect(codeOf(() => server.receive(shares[0]!))).toBe('CIPHERML_E_PROTOCOL');
      expect(codeOf(() => server.receive({ ...masked[0]!, roundId: 'r0' }))).toBe('CIPHERML_E_PROTOCOL');
      expect(codeOf(() => server.receive({ ...masked[0]!, masked: new Uint32Array(3) }))).toBe('CIPHERML_E_SHAPE_MISMATCH');
      server.receive(masked[0]!);
      expect(codeOf(() => server.receive(masked[0]!))).toBe('CIPHERML_E_PROTOCOL');
    });

    it('a client rejects out-of-order calls, an input of the wrong length and a share box not meant for it', () => {
      const c = new SecAggClient('z', params);
      expect(codeOf(() => c.unmask({ roundId: 'r1', survivors: [], dropped: [] }))).toBe('CIPHERML_E_PROTOCOL');
      const { clients, inboxes } = setup();
      expect(codeOf(() => clients[0]!.maskedInput(new Uint32Array(4), inboxes.get('a')!))).toBe('CIPHERML_E_PROTOCOL');
      const p2: SecAggParams = { ...params, roundId: 'r2' };
      const cs = ['a', 'b', 'c'].map((id) => new SecAggClient(id, p2));
      const srv = new SecAggServer(p2, { minClients: 3 });
      cs.forEach((x) => srv.receive(x.advertise()));
      const roster = srv.closeAdvertise();
      cs.forEach((x) => srv.receive(x.shareKeys(roster)));
      const ib = srv.closeShareKeys();
      expect(codeOf(() => cs[0]!.maskedInput(new Uint32Array(3), ib.get('a')!))).toBe('CIPHERML_E_SHAPE_MISMATCH');
      const forged = { ...ib.get('a')!, boxes: ib.get('b')!.boxes };
      expect(codeOf(() => cs[0]!.maskedInput(new Uint32Array(4), forged))).toMatch(/CIPHERML_E_(PROTOCOL|FORMAT_CORRUPT)/);
    });
  });

  it('checks the threshold against the number of share holders (MindSpore rules)', () => {
    expect(checkThreshold(3, 5, { collusion: false })).toBeNull();
    expect(codeOf(() => checkThreshold(2, 5, { collusion: false }))).toBe('CIPHERML_E_CONFIG_INVALID');
    expect(codeOf(() => checkThreshold(3, 5, { collusion: true }))).toBe('CIPHERML_E_CONFIG_INVALID');
    expect(checkThreshold(3, 5, { collusion: true, onViolation: 'warn' })).toMatch(/2n\/3/);
    expect(checkThreshold(4, 5, { collusion: true })).toBeNull();
    expect(codeOf(() => checkThreshold(5, 5, { collusion: false }))).toBe('CIPHERML_E_CONFIG_INVALID');
  });
});
