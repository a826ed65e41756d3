import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defences, resetDefences } from '../../src/core/defences.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { PaillierFedAvg } from '../../src/fl/strategy.ts';
import { generatePaillierKeyPair, type PaillierPrivateKey } from '../../src/paillier/index.ts';
import { EnclaveFedAvg } from '../../src/enclave/strategy.ts';
import { generateEnclaveTls } from '../../src/enclave/tls.ts';
import { FlServer } from '../../src/fl/server.ts';
import { OTHER_MEASUREMENT, PACKING, methodRecorder, settings, attestedWorker, bundleFor, makeEnclaveParties, operatorServer, policyFor, startAggregator, tempDir, type EnclaveParties } from './harness.ts';

// Adversary: the operator of the aggregator's machine (root on the host, controls the network
// port), who wants a worker's update under a key it can use, or a run the worker did not agree to.
// Claims: a worker with --require-attestation refuses, with a typed error and before sending any
// update (the server's recorder sees no PushResult; for checks before join, no RPC at all),
// (1) an aggregator whose measurement is not the policy's, (2) a Paillier key substituted after
// attestation, (3) a simulation report when its policy does not allow simulation, and (4) a
// document replayed from another run. Each test also runs the broken build (the attestation check
// off, src/core/defences.ts) and shows the worker then sends its update.

const both = async (p: EnclaveParties, run: (i: number) => Promise<unknown>): Promise<unknown[]> => Promise.all([0, 1].map((i) => run(i).catch((e: unknown) => e)));

describe('adversary: the operator of an attested aggregator', () => {
  let p: EnclaveParties;
  let operatorKey: PaillierPrivateKey;
  beforeAll(async () => {
    p = makeEnclaveParties();
    operatorKey = (await generatePaillierKeyPair({ bits: 1024 })).privateKey;
  });
  afterEach(() => resetDefences());

  it('honest run: both workers attest, train, and the aggregate is decrypted in the enclave; nothing secret lies unsealed in the run folder', async () => {
    const dir = await tempDir('honest');
    const received: string[] = [];
    const agg = await startAggregator(p, dir, { received });
    const run = agg.run();
    const results = await both(p, (i) => attestedWorker(p, i, agg.address, policyFor(p), agg.runId));
    const summary = await run;
    await agg.close();
    expect(results.map((r) => (r as { rounds: number }).rounds)).toEqual([1, 1]);
    expect(summary.keyHolder).toBe('enclave (simulation: no hardware isolation)');
    expect(received.filter((m) => m === 'PushResult').length).toBeGreaterThanOrEqual(2);
    const { readdir, readFile } = await import('node:fs/promises');
    expect((await readdir(dir)).sort()).toEqual(['enclave.sealed', 'history.json', 'history.svg']);
    expect(await readFile(`${dir}/history.json`, 'utf8')).toContain('simulation: no hardware isolation');
    expect(await readFile(`${dir}/history.svg`, 'utf8')).toContain('simulation: no hardware isolation');
  });

  it('(1) wrong measurement: refused before any RPC; the broken build sends its update', async () => {
    const received: string[] = [];
    const agg = await startAggregator(p, await tempDir('measure'), { measurement: OTHER_MEASUREMENT, received });
    const run = agg.run().catch((e: unknown) => e);
    const refused = await attestedWorker(p, 0, agg.address, policyFor(p)).catch((e: unknown) => e);
    expect(isCipherMLError(refused, 'CIPHERML_E_ATTESTATION_POLICY')).toBe(true);
    expect(received).toEqual([]);
    defences.attestationCheck = false;
    await both(p, (i) => attestedWorker(p, i, agg.address, policyFor(p)));
    await run;
    await agg.close();
    expect(received).toContain('PushResult');
  });

  it('(2) key substitution after attestation: the join reply offers the operator\'s key, refused before any update; the broken build encrypts under the operator\'s key', async () => {
    const received: string[] = [];
    const tls = generateEnclaveTls(['127.0.0.1']);
    const enclaveKey = (await generatePaillierKeyPair({ bits: 1024 })).privateKey;
    // The document binds the enclave's key; the server behind it hands out the operator's.
    const op = await operatorServer(p, await tempDir('subst'), {
      strategy: new PaillierFedAvg({ kind: 'server', privateKey: operatorKey }, PACKING),
      runId: 'run-s',
      tls,
      bundle: bundleFor(p, enclaveKey, tls, 'run-s'),
      received,
    });
    const refused = await attestedWorker(p, 0, op.listener.address, policyFor(p), 'run-s').catch((e: unknown) => e);
    expect(isCipherMLError(refused, 'CIPHERML_E_ATTESTATION_REPORT_DATA')).toBe(true);
    expect((refused as { param?: string }).param).toBe('publicKey');
    expect(received).toEqual(['Join']);
    defences.attestationCheck = false;
    await both(p, (i) => attestedWorker(p, i, op.listener.address, policyFor(p), 'run-s'));
    const summary = (await op.run) as { model: unknown };
    await op.server.close();
    await op.listener.close();
    expect(received).toContain('PushResult');
    // The operator held the key the updates were encrypted under: it decrypted the aggregate.
    expect(summary.model).not.toBeNull();
  });

  it('(3) a simulation report when the policy does not allow simulation: refused before any RPC; the broken build sends', async () => {
    const received: string[] = [];
    const agg = await startAggregator(p, await tempDir('sim'), { received });
    const run = agg.run().catch((e: unknown) => e);
    const strict = policyFor(p, { allowSimulation: false });
    const refused = await attestedWorker(p, 0, agg.address, strict, agg.runId).catch((e: unknown) => e);
    expect(isCipherMLError(refused, 'CIPHERML_E_ATTESTATION_SIMULATION')).toBe(true);
    expect(received).toEqual([]);
    defences.attestationCheck = false;
    await both(p, (i) => attestedWorker(p, i, agg.address, strict, agg.runId));
    await run;
    await agg.close();
    expect(received).toContain('PushResult');
  });

  it('(4) a document replayed from another run: refused (report data and run id); the broken build sends', async () => {
    const dirA = await tempDir('replay-a');
    const genuine = await startAggregator(p, dirA);
    const replayed = genuine.attestation;
    // Run A's own aggregator, to a worker told to join run B: the bound run id decides.
    const otherRun = await attestedWorker(p, 0, genuine.address, policyFor(p), 'run-b').catch((e: unknown) => e);
    expect(isCipherMLError(otherRun, 'CIPHERML_E_ATTESTATION_REPORT_DATA')).toBe(true);
    expect((otherRun as { param?: string }).param).toBe('run-id');
    await genuine.close();
    // Run B: a new key, TLS key and run, served with run A's (genuine, validly signed) document.
    const received: string[] = [];
    const tls = generateEnclaveTls(['127.0.0.1']);
    const keyB = (await generatePaillierKeyPair({ bits: 1024 })).privateKey;
    const op = await operatorServer(p, await tempDir('replay-b'), {
      strategy: new EnclaveFedAvg({ privateKey: keyB, packing: PACKING, roster: p.roster, minFit: 2 }),
      runId: 'run-b',
      tls,
      bundle: replayed,
      received,
    });
    const refused = await attestedWorker(p, 0, op.listener.address, policyFor(p), 'run-b').catch((e: unknown) => e);
    expect(isCipherMLError(refused, 'CIPHERML_E_ATTESTATION_REPORT_DATA')).toBe(true);
    expect((refused as { param?: string }).param).toBe('report-data');
    expect(received).toEqual([]);
    defences.attestationCheck = false;
    await both(p, (i) => attestedWorker(p, i, op.listener.address, policyFor(p), 'run-b'));
    await op.run;
    await op.server.close();
    await op.listener.close();
    expect(received).toContain('PushResult');
  });

  it('(5) an unattested aggregator (a plain Paillier server on the same port, no TLS, no document): refused, the server received nothing', async () => {
    const received: string[] = [];
    const plain = new FlServer({ settings: { ...settings(await tempDir('plain')), trust: { identity: p.server, roster: p.roster } }, strategy: new PaillierFedAvg({ kind: 'server', privateKey: operatorKey }, PACKING), interceptors: [methodRecorder(received)] });
    const address = await plain.listen();
    const refused = await attestedWorker(p, 0, address, policyFor(p)).catch((e: unknown) => e);
    await plain.close();
    expect(isCipherMLError(refused, 'CIPHERML_E_PEER_UNAVAILABLE')).toBe(true);
    expect((refused as Error).message).toMatch(/over TLS/);
    expect(received).toEqual([]);
  });
});
