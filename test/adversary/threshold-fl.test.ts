import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCipherMLError } from '../../src/core/errors.ts';
import { defences, resetDefences } from '../../src/core/defences.ts';
import { decryptPacked, generatePaillierKeyPair, type PackedCiphertext } from '../../src/paillier/index.ts';
import { logRegClient } from '../../src/fl/apps/logreg.ts';
import { flatten, type NamedTensor } from '../../src/fl/protocol.ts';
import { FlServer, type RunSummary, type ServerSettings } from '../../src/fl/server.ts';
import { PaillierFedAvg, PlainFedAvg, type Strategy } from '../../src/fl/strategy.ts';
import { ThresholdFedAvg, type ThresholdRoundReport } from '../../src/fl/threshold-strategy.ts';
import { thresholdContributionSigner } from '../../src/fl/threshold-worker.ts';
import { openContribution } from '../../src/fl/contribution.ts';
import { createRpcTransport, startRpcServer } from '../../src/fl/transport.ts';
import { ThresholdKeyHolderService } from '../../src/fl/gen/cipherml/fl/v1/threshold_pb.ts';
import { runWorker, type ContributionSigner, type FlClient, type WorkerSummary } from '../../src/fl/worker.ts';
import { loadCsvDataset, shardDataset } from '../../src/ml/csv.ts';
import { PACKING, thresholdWorld, type ThresholdWorld } from './threshold-harness.ts';

// The federated runtime with key-holder "threshold" over real gRPC on loopback: a server, three
// workers and three key holders (in this process, each on its own socket). Honest runs match
// plain FedAvg; a cheating holder is named and outvoted; a server that substitutes its own key
// or downgrades to plaintext gets nothing from a pinned worker — and each defence is shown to
// matter by the same run with it disabled.

const data = (f: string) => join(import.meta.dirname, '..', '..', 'examples', 'data', f);
let dir: string;
let clients: (() => FlClient)[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cipherml-threshold-fl-'));
  const guest = await loadCsvDataset(data('breast_homo_guest.csv'));
  const host = await loadCsvDataset(data('breast_homo_host.csv'));
  const shards = [shardDataset(guest, 1, 2), shardDataset(guest, 2, 2), host];
  clients = shards.map((d, i) => () => logRegClient(d, { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: i + 1 }));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

function settings(name: string, workers: number, rounds: number): ServerSettings {
  return {
    address: '127.0.0.1:0',
    numRounds: rounds,
    fractionFit: 1,
    fractionEvaluate: 0,
    minFitClients: workers,
    minEvaluateClients: 0,
    minAvailableClients: workers,
    roundTimeoutMs: 60_000,
    joinTimeoutMs: 30_000,
    evalEvery: 1000,
    runDir: join(dir, name),
    secret: '',
    maxMessageBytes: 16 << 20,
    fitConfig: { 'local-epochs': '1', 'batch-size': '32', 'learning-rate': '0.1', l2: '0.001' },
    seed: 7,
    pollWaitMs: 300,
  };
}

/** Runs a server with `strategy` and workers 1…n (each optionally pinned/signing) over loopback gRPC. */
async function run(name: string, strategy: Strategy, signers: readonly (ContributionSigner | undefined)[], rounds = 3): Promise<{ summary: RunSummary | Error; workers: (WorkerSummary | Error)[] }> {
  const server = new FlServer({ settings: settings(name, signers.length, rounds), strategy });
  const address = await server.listen();
  const running = server.run().catch((e: unknown) => e as Error);
  // A failed run sends no finish task: stop the workers then.
  const stop = new AbortController();
  void running.then((r) => r instanceof Error && stop.abort());
  const workers = signers.map((signer, i) =>
    runWorker({
      workerId: String(i + 1),
      token: '',
      client: clients[i]!(),
      transport: createRpcTransport({ address, maxMessageBytes: 16 << 20 }),
      pollWaitMs: 300,
      reconnectTimeoutMs: 5_000,
      signal: stop.signal,
      ...(signer === undefined ? {} : { contributions: signer }),
    }).catch((e: unknown) => e as Error),
  );
  const done = await Promise.all(workers);
  // A server whose workers all refused waits for joins until its join timeout: stop it.
  const summary = done.every((w) => w instanceof Error) ? new Error('no worker took part') : await running;
  await server.close();
  return { summary, workers: done };
}

function maxDiff(a: readonly NamedTensor[], b: readonly NamedTensor[]): number {
  const x = flatten(a);
  const y = flatten(b);
  return Math.max(...Array.from(x, (v, i) => Math.abs(v - y[i]!)));
}

describe('key-holder threshold over real gRPC', () => {
  let world: ThresholdWorld;
  let plain: RunSummary;
  beforeAll(async () => {
    world = await thresholdWorld({ hooks: [{ corruptShares: true }, undefined, undefined] });
    const r = await run('plain', new PlainFedAvg(), [undefined, undefined, undefined]);
    plain = r.summary as RunSummary;
  });
  afterAll(async () => world.close());

  const holdersOf = (w: ThresholdWorld, ids: readonly number[]) => ids.map((i) => ({ name: `holder ${i}`, transport: createRpcTransport({ address: w.holders[i - 1]!.server.address, maxMessageBytes: 16 << 20 }) }));
  const signers = (w: ThresholdWorld) => w.workers.map((id) => thresholdContributionSigner(id, w.dealt.publicKey));

  it('trains like plain FedAvg; the cheating holder 1 is named in every round and outvoted by holders 2 and 3', async () => {
    const reports: ThresholdRoundReport[] = [];
    const strategy = new ThresholdFedAvg({ publicKey: world.dealt.publicKey, packing: PACKING, holders: holdersOf(world, [1, 2, 3]), roster: world.roster, onRound: (_, r) => reports.push(r) });
    const { summary, workers } = await run('threshold', strategy, signers(world));
    expect(workers.every((w) => !(w instanceof Error))).toBe(true);
    const s = summary as RunSummary;
    expect(s.keyHolder).toBe('threshold');
    expect(maxDiff(s.model!, plain.model!)).toBeLessThan(1e-3);
    expect(reports).toHaveLength(3);
    for (const r of reports) expect(r).toMatchObject({ used: [2, 3], rejected: [1] });
  });

  it('with only the cheater and one honest holder the round fails naming holder 1; the build without share verification trains a wrong model', async () => {
    const fresh = await thresholdWorld({ hooks: [{ corruptShares: true }, undefined, undefined], dealt: world.dealt });
    try {
      const honest = new ThresholdFedAvg({ publicKey: fresh.dealt.publicKey, packing: PACKING, holders: holdersOf(fresh, [1, 2]) });
      const refused = await run('cheater-refused', honest, signers(fresh), 1);
      expect(isCipherMLError(refused.summary, 'CIPHERML_E_THRESHOLD_SHARE_INVALID') && refused.summary.details?.['holders']).toEqual([1]);
    } finally {
      await fresh.close();
    }
    const again = await thresholdWorld({ hooks: [{ corruptShares: true }, undefined, undefined], dealt: world.dealt });
    try {
      const broken = new ThresholdFedAvg({ publicKey: again.dealt.publicKey, packing: PACKING, holders: holdersOf(again, [1, 2]) });
      defences.thresholdShareProofs = false;
      const wrong = await run('cheater-unverified', broken, signers(again), 1).finally(resetDefences);
      // Without share verification the cheater goes unnamed: the model is wrong, or the slot range
      // check (src/paillier/packing.ts) refuses the garbage without knowing who sent it.
      if (wrong.summary instanceof Error) {
        expect(isCipherMLError(wrong.summary, 'CIPHERML_E_AGGREGATE_OUT_OF_RANGE') || isCipherMLError(wrong.summary, 'CIPHERML_E_ROUND_FAILED')).toBe(true);
        expect(JSON.stringify((wrong.summary as { details?: unknown }).details ?? {})).not.toContain('"holders"');
      } else {
        const plainRound1 = (await run('plain-1', new PlainFedAvg(), [undefined, undefined, undefined], 1)).summary as RunSummary;
        expect(maxDiff((wrong.summary as RunSummary).model!, plainRound1.model!)).toBeGreaterThan(1);
      }
    } finally {
      await again.close();
    }
  });

  it('a server that announces its own Paillier key is refused by pinned workers; unpinned workers hand it their updates', async () => {
    const serverKey = (await generatePaillierKeyPair({ bits: 1024 })).privateKey;
    // The malicious server decrypts every single update it receives under its own key.
    const stolen: Float64Array[] = [];
    class Thief extends PaillierFedAvg {
      override checkFitResult(...args: Parameters<PaillierFedAvg['checkFitResult']>): unknown {
        const enc = args[0].model?.kind.case === 'encrypted' ? args[0].model.kind.value : undefined;
        // It unwraps signed contributions to get at the ciphertexts.
        if (enc !== undefined && Buffer.from(enc.packed.subarray(0, 4)).toString('latin1') === 'CPTC') enc.packed = openContribution(enc.packed, 'stolen').packed;
        const decoded = super.checkFitResult(...args);
        stolen.push(decryptPacked(serverKey, decoded as PackedCiphertext));
        return decoded;
      }
    }
    const pinned = await run('substitute-pinned', new Thief({ kind: 'server', privateKey: serverKey }, PACKING), signers(world), 1);
    for (const w of pinned.workers) expect(isCipherMLError(w, 'CIPHERML_E_KEY_MISMATCH')).toBe(true);
    expect(stolen).toHaveLength(0);
    // Broken build: the same workers without the key check encrypt under the server's key, which decrypts each update.
    const noCheck = signers(world).map((s) => ({ ...s, checkKey: () => undefined }));
    await run('substitute-unchecked', new Thief({ kind: 'server', privateKey: serverKey }, PACKING), noCheck, 1);
    expect(stolen).toHaveLength(3);
    expect(stolen.every((v) => v.some((x) => x !== 0))).toBe(true);
  });

  it('a holder that never answers does not stall the round: it is reported as failed and the others decrypt', async () => {
    const silent = await startRpcServer({
      address: '127.0.0.1:0',
      maxMessageBytes: 1 << 20,
      routes: (r) =>
        r.service(ThresholdKeyHolderService, {
          holderInfo: () => ({}),
          decryptContributions: () => new Promise<never>(() => undefined),
        }),
    });
    const fresh = await thresholdWorld({ dealt: world.dealt });
    try {
      const reports: ThresholdRoundReport[] = [];
      const holders = [{ name: 'silent', transport: createRpcTransport({ address: silent.address, maxMessageBytes: 1 << 20 }) }, ...holdersOf(fresh, [2, 3])];
      const strategy = new ThresholdFedAvg({ publicKey: fresh.dealt.publicKey, packing: PACKING, holders, holderTimeoutMs: 6000, onRound: (_, r) => reports.push(r) });
      const { summary } = await run('silent-holder', strategy, signers(fresh), 1);
      expect((summary as RunSummary).rounds).toBe(1);
      expect(reports[0]).toMatchObject({ used: [2, 3], rejected: [] });
      expect(reports[0]!.failed.map((f) => f.holder)).toEqual(['silent']);
    } finally {
      await fresh.close();
      await silent.close();
    }
  });

  it('a server that downgrades to plain FedAvg is refused by pinned workers; unpinned workers send plaintext', async () => {
    const pinned = await run('downgrade-pinned', new PlainFedAvg(), signers(world), 1);
    for (const w of pinned.workers) expect(isCipherMLError(w, 'CIPHERML_E_KEY_MISMATCH')).toBe(true);
    const unpinned = await run('downgrade-unpinned', new PlainFedAvg(), [undefined, undefined, undefined], 1);
    expect((unpinned.summary as RunSummary).model).not.toBeNull();
  });
});
