import { describe, expect, it } from 'vitest';
import { create, fromBinary } from '@bufbuild/protobuf';
import { PushResultRequestSchema, SecAggStageTaskSchema, type SecAggStageTask } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { rosterToWire } from '../../src/fl/secagg-wire.ts';
import type { CipherMLError } from '../../src/core/errors.ts';
import { graphNeighbours, revealedGraphSeed, rosterTree } from '../../src/secagg/graph.ts';
import type { Roster, RosterEntry } from '../../src/secagg/protocol.ts';
import { refusals, runSecAgg, stageAnswers, type SecAggRun, type SecAggRunResult } from './harness-secagg.ts';

// Grinding the SecAgg+ graph after the commit–reveal (docs/secagg.md, threat table): the real
// server, over loopback gRPC, lets the committee reveal, then sends every worker a neighbourhood
// view under a seed of its own making — from an altered reveal, from the reveals minus one, or
// chosen outright — with valid Merkle proofs and consistent neighbourhoods. Honest workers refuse
// (CIPHERML_E_SECAGG_PARAMETER_REFUSED naming secagg-graph-seed) before sharing anything. Each
// attack runs once more with defences.secaggSeedReveal off, where the workers seal their shares
// for the neighbours of the server's graph: the attack succeeds, so the test can fail.

const policy = { corruptFraction: 0.01, dropoutRate: 0.01, statisticalSecurity: 8, collusion: false };
const base: SecAggRun = { workers: 9, policy, settings: { mode: 'secagg+', numShares: 7, threshold: 2, shareSecretsRatio: 0.4, ...policy } };

interface Grind {
  readonly committee: readonly RosterEntry[];
  readonly reveals: readonly Uint8Array[];
  readonly seed: string;
}

/** Graph seeds the malicious server announced, by worker. */
type Announced = Map<string, string>;

/** A server that rewrites every roster view after the reveals, under the seed `grind` picks from the honest committee and reveals. */
function grinding(grind: (whole: Roster) => Grind, announced: Announced): SecAggRun {
  return {
    ...base,
    adversary: {
      task: (stage, to, task, whole) => {
        if (stage !== 'share-keys' || task.stage.case !== 'roster') return task;
        const g = grind(whole);
        const n = whole.entries.length;
        const me = whole.entries.find((e) => e.id === to)!;
        const xs = new Set([me.x, ...graphNeighbours(me.x, n, whole.degree, g.seed)]);
        const proof = rosterTree(whole.entries).prove([...[...xs].map((x) => x - 1), ...g.committee.map((e) => e.x - 1)]);
        const view: Roster = { roundId: whole.roundId, entries: whole.entries.filter((e) => xs.has(e.x)), degree: whole.degree, graphSeed: g.seed, clients: n, root: whole.root!, proof, committee: g.committee, reveals: g.reveals };
        announced.set(to, g.seed);
        return create(SecAggStageTaskSchema, { roundId: task.roundId, stage: { case: 'roster', value: rosterToWire(view) } }) satisfies SecAggStageTask;
      },
    },
  };
}

function seedOf(whole: Roster, committee: readonly RosterEntry[], reveals: readonly Uint8Array[]): string {
  return revealedGraphSeed(whole.roundId, whole.entries.length, whole.root!, committee.map((e, i) => ({ x: e.x, id: e.id, reveal: reveals[i]! })));
}

const attacks: { name: string; grind: (whole: Roster) => Grind }[] = [
  {
    name: 'alters one committee reveal and derives the seed from it',
    grind: (w) => {
      const reveals = w.reveals!.map((r, i) => (i === 0 ? Uint8Array.from(r, (b, j) => (j === 31 ? b ^ 0x80 : b)) : r));
      return { committee: w.committee!, reveals, seed: seedOf(w, w.committee!, reveals) };
    },
  },
  {
    name: 'omits one committee reveal and derives the seed from the others',
    grind: (w) => {
      const m = w.committee!.length;
      return { committee: w.committee!, reveals: w.reveals!.slice(0, m - 1), seed: seedOf(w, w.committee!.slice(0, m - 1), w.reveals!.slice(0, m - 1)) };
    },
  },
  {
    name: 'substitutes a seed it chose after seeing the reveals',
    grind: (w) => ({ committee: w.committee!, reveals: w.reveals!, seed: seedOf(w, w.committee!, w.reveals!).replace(/^./, (c) => (c === '0' ? '1' : '0')) }),
  },
];

/** The recipients of each worker's share boxes, as the server received them. */
function boxRecipients(r: SecAggRunResult): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const wire of r.received) {
    let msg;
    try {
      msg = fromBinary(PushResultRequestSchema, wire);
    } catch {
      continue;
    }
    if (msg.body.case === 'secagg' && msg.body.value.stage.case === 'shareKeys') out.set(msg.sessionId, msg.body.value.stage.value.boxes.map((b) => b.peer).sort());
  }
  return out;
}

describe('SecAgg+ graph seed by commit–reveal against a grinding server (loopback gRPC)', () => {
  for (const a of attacks) {
    it(`refuses a server that ${a.name} (CIPHERML_E_SECAGG_PARAMETER_REFUSED secagg-graph-seed); with defences.secaggSeedReveal off the workers share along its graph`, async () => {
      const honest = await runSecAgg(grinding(a.grind, new Map()));
      const refused = refusals(honest);
      expect(refused.map((x) => x.worker).sort()).toEqual(['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8', 'w9']);
      for (const x of refused) {
        expect(x.code).toBe('CIPHERML_E_SECAGG_PARAMETER_REFUSED');
        expect(x.message).toContain('secagg-graph-seed:');
      }
      expect(stageAnswers(honest).filter((x) => x.stage === 'shareKeys')).toHaveLength(0);
      expect(honest.server).toBeInstanceOf(Error);

      const announced: Announced = new Map();
      const broken = await runSecAgg({ ...grinding(a.grind, announced), broken: 'seed-reveal' });
      expect(refusals(broken).filter((x) => x.code === 'CIPHERML_E_SECAGG_PARAMETER_REFUSED')).toEqual([]);
      const boxes = boxRecipients(broken);
      expect(boxes.size).toBe(9);
      // Every worker sealed its shares for its neighbours in the graph of the server's seed.
      const xs = new Map([...Array(9).keys()].map((i) => [`w${i + 1}`, i + 1]));
      const idOf = new Map([...xs].map(([id, x]) => [x, id]));
      const seed = announced.get('w1')!;
      const chosen = [...xs.keys()].map((id) => [id, ...graphNeighbours(xs.get(id)!, 9, 6, seed).map((x) => idOf.get(x)!)].sort());
      expect([...boxes.values()].sort()).toEqual(chosen.sort());
    }, 60_000);
  }

  it('a committee member dropping between commit and reveal aborts the attempt (CIPHERML_E_ROUND_FAILED); nobody shares', async () => {
    const dropAt = new Map([...Array(9).keys()].map((i) => [`w${i + 1}`, { round: 1, stage: 'reveal' as const }]));
    const r = await runSecAgg({ ...base, settings: { ...base.settings, stageTimeoutMs: 1500 }, dropAt });
    expect(r.server).toBeInstanceOf(Error);
    const err = r.server as CipherMLError;
    expect(err.code).toBe('CIPHERML_E_ROUND_FAILED');
    expect(err.message).toMatch(/graph-seed committee members \(.+\) did not reveal; .* this attempt is aborted/);
    expect(stageAnswers(r).filter((x) => x.stage === 'shareKeys')).toHaveLength(0);
  }, 60_000);
});
