import { describe, expect, it } from 'vitest';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { SecAggStageTaskSchema, type SecAggStageTask } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { rosterToWire } from '../../src/fl/secagg-wire.ts';
import { generateX25519KeyPair } from '../../src/secagg/keys.ts';
import { refusals, runSecAgg, stageAnswers, type SecAggRun, type SecAggRunResult } from './harness-secagg.ts';

// A malicious server against honest workers (Bonawitz et al. 2017 §4, active adversary): each
// attack is played by the real server over loopback gRPC, rewriting what it sends. Honest workers
// must refuse with a typed error naming the parameter, before they reveal what the attack is
// after. Each attack also runs once against the build whose client checks are disabled
// (SECAGG_TEST_HOOKS.disableChecks), where the workers go on and reveal it: the test can fail.

function withStage(task: SecAggStageTask, stage: NonNullable<MessageInitShape<typeof SecAggStageTaskSchema>['stage']>): SecAggStageTask {
  return create(SecAggStageTaskSchema, { roundId: task.roundId, stage });
}

interface Attack {
  readonly name: string;
  readonly run: SecAggRun;
  readonly code: string;
  readonly param: string;
  /** The answer the attack is after (sent by the broken build, never by the honest one). */
  readonly revealed: string;
  /** Answers of that kind honest workers still send (the attacked worker's own, genuine roster). */
  readonly honestSends?: number;
}

const attacks: Attack[] = [
  {
    name: 'lowers the threshold to t = 1 (any two shares reconstruct a secret)',
    run: { adversary: { round: (r) => ({ ...r, threshold: 1 }) } },
    code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED',
    param: 'reconstruct-secrets-threshold',
    revealed: 'shareKeys',
  },
  {
    name: 'substitutes its own keys for one worker in the roster others receive',
    run: {
      adversary: {
        task: (stage, to, task) => {
          if (stage !== 'share-keys' || to === 'w2' || task.stage.case !== 'roster') return task;
          const fake = generateX25519KeyPair();
          const entries = task.stage.value.entries.map((e) => (e.id === 'w2' ? { ...e, cPk: fake.publicKey, sPk: generateX25519KeyPair().publicKey } : e));
          return withStage(task, { case: 'roster', value: { ...task.stage.value, entries } });
        },
      },
    },
    code: 'CIPHERML_E_SIGNATURE_INVALID',
    param: 'roster',
    revealed: 'shareKeys',
    honestSends: 1,
  },
  {
    name: 'strips the signatures from the roster (downgrade to the honest-but-curious variant)',
    run: {
      adversary: {
        task: (stage, _to, task) =>
          stage === 'share-keys' && task.stage.case === 'roster' ? withStage(task, { case: 'roster', value: { ...task.stage.value, entries: task.stage.value.entries.map((e) => ({ ...e, signature: new Uint8Array(0) })) } }) : task,
      },
    },
    code: 'CIPHERML_E_SIGNATURE_INVALID',
    param: 'roster',
    revealed: 'shareKeys',
  },
  {
    name: 'proceeds with |U2| < t + 1 (tells each worker only two clients shared keys)',
    run: {
      adversary: {
        task: (stage, to, task) => {
          if (stage !== 'masked-input' || task.stage.case !== 'inbox') return task;
          const holders = [to, to === 'w1' ? 'w2' : 'w1'];
          return withStage(task, { case: 'inbox', value: { holders, boxes: task.stage.value.boxes.filter((b) => holders.includes(b.peer)) } });
        },
      },
    },
    code: 'CIPHERML_E_SECAGG_ABORTED',
    param: 'reconstruct-secrets-threshold',
    revealed: 'maskedInput',
  },
  {
    name: 'sends inconsistent survivor sets (w3 "dropped" to w1 and w2, survived to the others)',
    run: {
      adversary: {
        task: (stage, to, task) => {
          if (stage !== 'consistency' || (to !== 'w1' && to !== 'w2') || task.stage.case !== 'consistency') return task;
          const v = task.stage.value;
          return withStage(task, { case: 'consistency', value: { ...v, survivors: v.survivors.filter((s) => s !== 'w3'), dropped: [...v.dropped, 'w3'] } });
        },
      },
    },
    code: 'CIPHERML_E_SECAGG_ABORTED',
    param: 'survivors',
    revealed: 'unmask',
  },
  {
    name: 'announces a SecAgg+ degree below the derived minimum',
    run: {
      workers: 7,
      settings: { mode: 'secagg+' },
      adversary: {
        task: (stage, _to, task) => (stage === 'share-keys' && task.stage.case === 'roster' ? withStage(task, { case: 'roster', value: { ...task.stage.value, degree: 4 } }) : task),
      },
    },
    code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED',
    param: 'num-shares',
    revealed: 'shareKeys',
  },
  {
    name: 'chooses the SecAgg+ graph seed itself',
    run: {
      workers: 7,
      settings: { mode: 'secagg+', numShares: 5, threshold: 2, shareSecretsRatio: 0.4 },
      adversary: {
        // It sends the whole roster (no neighbourhood view, no commitment) under its own seed.
        task: (stage, _to, task, roster) => (stage === 'share-keys' && task.stage.case === 'roster' ? withStage(task, { case: 'roster', value: { ...rosterToWire(roster), graphSeed: '00'.repeat(32) } }) : task),
      },
    },
    code: 'CIPHERML_E_SECAGG_PARAMETER_REFUSED',
    param: 'secagg-graph-seed',
    revealed: 'shareKeys',
  },
];

function sent(r: SecAggRunResult, stage: string): number {
  return stageAnswers(r).filter((a) => a.stage === stage).length;
}

describe('secure aggregation against a malicious server (loopback gRPC)', () => {
  it('control: the honest server completes the actively secure round (consistency check included)', async () => {
    const r = await runSecAgg();
    expect(r.server).not.toBeInstanceOf(Error);
    expect(refusals(r)).toEqual([]);
    expect(sent(r, 'consistency')).toBe(5);
    expect(sent(r, 'unmask')).toBe(5);
  });

  it('control: actively secure SecAgg+ on a sparse graph (9 workers, k = 6) completes with every check on', async () => {
    const policy = { corruptFraction: 0.01, dropoutRate: 0.01, statisticalSecurity: 8, collusion: false };
    const r = await runSecAgg({ workers: 9, policy, settings: { mode: 'secagg+', numShares: 7, threshold: 2, shareSecretsRatio: 0.4, ...policy } });
    expect(refusals(r).map((x) => x.message)).toEqual([]);
    expect(r.server).not.toBeInstanceOf(Error);
    expect((r.server as { final: { secagg: unknown } }).final.secagg).toMatchObject({ mode: 'secagg+', survivors: 9, active: true });
    expect(sent(r, 'consistency')).toBe(9);
    // Commit–reveal of the graph seed: the committee of 2 (γ = 0.01, σ = 8) revealed.
    expect(sent(r, 'reveal')).toBe(2);
  });

  it('refuses a SecAgg+ neighbourhood view with a validly signed non-neighbour added (9 workers, k = 6); the build without client checks shares', async () => {
    const run = (): SecAggRun => {
      // The views sent so far: w9's is built last, when every entry has passed by.
      const seen: { id: string }[][] = [];
      const policy = { corruptFraction: 0.01, dropoutRate: 0.01, statisticalSecurity: 8, collusion: false };
      return {
        workers: 9,
        policy,
        settings: { mode: 'secagg+', numShares: 7, threshold: 2, shareSecretsRatio: 0.4, ...policy },
        adversary: {
          task: (stage, to, task) => {
            if (stage !== 'share-keys' || task.stage.case !== 'roster') return task;
            seen.push(task.stage.value.entries);
            if (to !== 'w9') return task;
            const mine = new Set(task.stage.value.entries.map((e) => e.id));
            const stranger = task.stage.value.entries.length < 9 ? seen.flat().find((e) => !mine.has(e.id)) : undefined;
            if (stranger === undefined) throw new Error('test setup: w9 has no non-neighbour');
            return withStage(task, { case: 'roster', value: { ...task.stage.value, entries: [...task.stage.value.entries, stranger as (typeof task.stage.value.entries)[number]] } });
          },
        },
      };
    };
    const honest = await runSecAgg(run());
    expect(refusals(honest).map((x) => [x.worker, x.code, x.message.includes('roster:')])).toEqual([['w9', 'CIPHERML_E_SECAGG_PARAMETER_REFUSED', true]]);
    expect(sent(honest, 'shareKeys')).toBe(8);
    const broken = await runSecAgg({ ...run(), broken: 'checks' });
    expect(sent(broken, 'shareKeys')).toBe(9);
  }, 60_000);

  for (const a of attacks) {
    it(`refuses a server that ${a.name}: ${a.code} naming ${a.param}; the build without client checks reveals it`, async () => {
      const honest = await runSecAgg(a.run);
      const refused = refusals(honest);
      expect(refused.length).toBeGreaterThan(0);
      for (const x of refused) {
        expect(x.code).toBe(a.code);
        expect(x.message).toContain(`${a.param}:`);
      }
      expect(sent(honest, a.revealed)).toBe(a.honestSends ?? 0);
      expect(honest.server).toBeInstanceOf(Error);

      const broken = await runSecAgg({ ...a.run, broken: 'checks' });
      expect(sent(broken, a.revealed)).toBeGreaterThan(a.honestSends ?? 0);
      expect(refusals(broken).filter((x) => x.code === a.code)).toEqual([]);
    }, 60_000);
  }
});
