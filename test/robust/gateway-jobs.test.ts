import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext, serializePublicContext, writeKeyFiles } from '../../src/ckks/index.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { Gateway } from '../../src/gateway/index.ts';
import { encryptTrainingData, encryptWeights, TRAIN_CKKS_PARAMETERS, trainingGaloisSteps } from '../../src/ml/encrypted-lr.ts';
import { trainPoly3LogReg } from '../../src/ml/poly-logreg.ts';
import { openStorage, startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';
import { codeOfAsync } from '../helpers.ts';
import { snapshot } from './snapshot.ts';

// The gateway and an open job (issue 17). Before: a second `gateway fit` generated new keys
// (overwriting the local key), replaced the uploads, then got 409, and the old job could never
// finish. Now a gateway whose key store started the job resumes it with the same key; any other
// is refused before it makes a key or uploads a byte. Real service, real fit job (4 rows × 2
// features; keys with the Galois steps of that block).

const root = mkdtempSync(join(tmpdir(), 'cipherml-gw-jobs-'));
let svc: RunningService;
let alice: string;
let ctx: CkksContext;
const rows = [Float64Array.of(1, 0), Float64Array.of(0, 1), Float64Array.of(1, 1), Float64Array.of(0, 0)];
const labels = [1, 0, 1, 0];
const csv = { features: 'a,b\n1,0\n0,1\n1,1\n0,0\n', labels: 'y\n1\n0\n1\n0\n' };
const hyper = { numberOfEpochs: 2, learningRate: 0.5, numberOfFeatures: 2 };
const model = { coef_: [[0, 0]], intercept_: [0] };
const api = (path: string, method = 'GET', body?: Uint8Array | object) =>
  fetch(`${svc.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${alice}`, ...(body === undefined ? {} : { 'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json' }) }, ...(body === undefined ? {} : { body: body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body) }) });

/** Starts a job the way a gateway does (uploads under `ctx`, then fit); `wait`: until its first refresh. */
async function openJob(wait = true): Promise<string> {
  for (const [seg, b] of Object.entries({ 'context/public': serializePublicContext(ctx), model: encryptWeights(ctx, [0, 0], 0), 'data/fit': encryptTrainingData(ctx, rows, labels) })) expect((await api(`/m/1/${seg}`, 'PUT', b)).status).toBe(200);
  const { jobId } = (await (await api('/m/1/fit', 'POST', hyper)).json()) as { jobId: string };
  if (!wait) return jobId;
  for (let t0 = Date.now(); ; ) {
    const j = (await (await api(`/m/1/jobs/${jobId}`)).json()) as { status: string };
    if (j.status === 'awaiting_refresh') return jobId;
    if (Date.now() - t0 > 60_000 || j.status === 'failed') throw new Error(`job ${j.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  const dataDir = join(root, 'data');
  const s = await openStorage({ dataDir });
  const owner = await s.createToken((await s.ensureUser('owner', 'owner')).id);
  alice = await s.createToken((await s.ensureUser('alice', 'user')).id);
  await s.close();
  svc = await startService({ dataDir, port: 0, console: false });
  expect((await fetch(`${svc.url}/api/v1/m/1/deploy_model`, { method: 'POST', headers: { authorization: `Bearer ${owner}` } })).status).toBe(200);
  expect((await api('/m/1/application/register_user', 'POST')).status).toBe(200);
  ctx = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: trainingGaloisSteps(4) });
  // Key store A holds the job's key, as the gateway that started it left it.
  mkdirSync(join(root, 'A', 'm@1'), { recursive: true, mode: 0o700 });
  await writeKeyFiles(join(root, 'A', 'm@1', 'ckks'), ctx);
});
afterAll(async () => {
  ctx?.delete();
  await svc?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('gateway fit with an open job', () => {
  it('refuses (CIPHERML_E_JOB_ACTIVE) a key store that did not start the job, before any key or upload; the job\'s own key store resumes it to the end with the same key', { timeout: 120_000 }, async () => {
    const jobId = await openJob();
    const before = await snapshot(svc.storage, ['alice']);
    const keyA = readFileSync(join(root, 'A', 'm@1', 'ckks'));
    const other = new Gateway({ service: svc.url, token: alice, model: 'm/1', keyDir: join(root, 'B') });
    for (const attempt of [() => other.fit({ model, hyper, ...csv }), () => other.generateKeys()]) {
      const e = await attempt().catch((x: unknown) => x);
      expect(isCipherMLError(e) ? [e.code, e.details?.['jobId']] : e).toEqual(['CIPHERML_E_JOB_ACTIVE', jobId]);
    }
    expect(existsSync(join(root, 'B', 'm@1', 'ckks'))).toBe(false);
    // Store A without its job record (e.g. the job was started elsewhere with a copy of the key): refused too.
    const a = new Gateway({ service: svc.url, token: alice, model: 'm/1', keyDir: join(root, 'A') });
    expect(await codeOfAsync(() => a.fit({ model, hyper, ...csv }))).toBe('CIPHERML_E_JOB_ACTIVE');
    expect(await snapshot(svc.storage, ['alice'])).toEqual(before);

    writeFileSync(join(root, 'A', 'm@1', 'ckks.job.json'), JSON.stringify({ service: svc.url, jobId, fingerprint: ctx.fingerprint }), { mode: 0o600 });
    const progress: string[] = [];
    const resumed = new Gateway({ service: svc.url, token: alice, model: 'm/1', keyDir: join(root, 'A'), onProgress: (l) => progress.push(l) });
    const { trained, figures } = await resumed.fit({ model, hyper, ...csv });
    expect(progress[0]).toContain(`resuming job ${jobId}`);
    expect(figures).toMatchObject({ jobId, refreshes: 1, epochs: 2, rows: 4, features: 2 });
    expect(readFileSync(join(root, 'A', 'm@1', 'ckks')).equals(keyA)).toBe(true);
    const plain = trainPoly3LogReg(rows, Float64Array.from(labels), { coef: new Float64Array(2), intercept: 0 }, { epochs: 2, learningRate: 0.5 });
    trained.coef_[0]!.forEach((w, j) => expect(Math.abs(w - plain.coef[j]!)).toBeLessThan(1e-2));
  });

  it('Gateway.cancel cancels the open job and frees the user', { timeout: 120_000 }, async () => {
    const jobId = await openJob(false);
    const gw = new Gateway({ service: svc.url, token: alice, model: 'm/1', keyDir: join(root, 'B') });
    expect(await gw.cancel()).toEqual({ jobId, status: 'cancelled' });
    expect(await gw.openJob()).toBeUndefined();
    expect(await codeOfAsync(() => gw.cancel())).toBe('CIPHERML_E_SERVICE_NOT_FOUND');
  });

  it('refuses a group- or other-readable secret key file with CIPHERML_E_KEY_FILE_INSECURE naming the file and the chmod, and leaves its mode alone', async () => {
    const key = join(root, 'A', 'm@1', 'ckks');
    chmodSync(key, 0o640);
    try {
      const gw = new Gateway({ service: svc.url, token: alice, model: 'm/1', keyDir: join(root, 'A') });
      const e = await gw.encryptPredictData('a,b\n1,2\n').catch((x: unknown) => x);
      expect(isCipherMLError(e, 'CIPHERML_E_KEY_FILE_INSECURE')).toBe(true);
      expect((e as Error).message).toContain(key);
      expect((e as Error).message).toContain(`chmod 600 ${key}`);
      expect(statSync(key).mode & 0o777).toBe(0o640);
    } finally {
      chmodSync(key, 0o600);
    }
  });
});
