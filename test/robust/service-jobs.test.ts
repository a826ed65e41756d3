import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext, serializePublicContext } from '../../src/ckks/index.ts';
import { encryptTrainingData, encryptWeights, TRAIN_CKKS_PARAMETERS, trainingGaloisSteps } from '../../src/ml/encrypted-lr.ts';
import { openStorage, startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';
import { snapshot } from './snapshot.ts';

// The job lifecycle over real HTTP on loopback (issue 17): a refresh the gateway never answers
// fails the job after the deadline and frees the user; an open job's inputs cannot be replaced
// (refused uploads change no stored state); a user cancels their own job, never another's.
// Real fit jobs on the service's worker threads, on 4 rows × 2 features (keys with the two
// Galois steps such a block needs, so uploads and epochs take well under a second).

const root = mkdtempSync(join(tmpdir(), 'cipherml-jobs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

type JobView = { jobId: string; status: string; error: { code: string; message: string } | null; figures: Record<string, unknown> };
let ctx: CkksContext;
let uploads: Record<string, Uint8Array>;
const hyper = (epochs: number) => ({ numberOfEpochs: epochs, learningRate: 0.1, numberOfFeatures: 2 });

async function prepare(dataDir: string, refreshTimeoutMs: number): Promise<{ svc: RunningService; alice: string; bob: string; call: (tok: string, method: string, path: string, body?: Uint8Array | object) => Promise<{ status: number; json: Record<string, unknown> }> }> {
  const s = await openStorage({ dataDir });
  const owner = await s.createToken((await s.ensureUser('owner', 'owner')).id);
  const alice = await s.createToken((await s.ensureUser('alice', 'user')).id);
  const bob = await s.createToken((await s.ensureUser('bob', 'user')).id);
  await s.close();
  const svc = await startService({ dataDir, port: 0, refreshTimeoutMs, console: false });
  const call = async (tok: string, method: string, path: string, body?: Uint8Array | object) => {
    const headers: Record<string, string> = { authorization: `Bearer ${tok}` };
    let payload: string | Uint8Array<ArrayBuffer> | undefined;
    if (body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream';
      payload = new Uint8Array(body);
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const r = await fetch(`${svc.url}/api/v1${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    const text = await r.text();
    return { status: r.status, json: (r.headers.get('content-type') ?? '').includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  expect((await call(owner, 'POST', '/m/1/deploy_model')).status).toBe(200);
  for (const t of [alice, bob]) expect((await call(t, 'POST', '/m/1/application/register_user')).status).toBe(200);
  for (const [seg, bytes] of Object.entries(uploads)) expect((await call(alice, 'PUT', `/m/1/${seg}`, bytes)).status).toBe(200);
  return { svc, alice, bob, call };
}

async function until(get: () => Promise<JobView>, done: (j: JobView) => boolean, ms = 60_000): Promise<JobView> {
  const t0 = Date.now();
  for (;;) {
    const j = await get();
    if (done(j)) return j;
    if (Date.now() - t0 > ms) throw new Error(`job still ${j.status} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  ctx = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: trainingGaloisSteps(4) });
  const rows = [Float64Array.of(1, 0), Float64Array.of(0, 1), Float64Array.of(1, 1), Float64Array.of(0, 0)];
  uploads = { 'context/public': serializePublicContext(ctx), model: encryptWeights(ctx, [0, 0], 0), 'data/fit': encryptTrainingData(ctx, rows, [1, 0, 1, 0]) };
});
afterAll(() => ctx?.delete());

describe('refresh deadline', () => {
  it('fails a job whose refresh the gateway never answers with CIPHERML_E_REFRESH_TIMEOUT after the deadline, withdraws the request and frees the user', { timeout: 60_000 }, async () => {
    const { svc, alice, call } = await prepare(join(root, 'deadline'), 700);
    try {
      const fit = await call(alice, 'POST', '/m/1/fit', hyper(2));
      expect(fit.status).toBe(202);
      const id = String(fit.json['jobId']);
      const job = () => call(alice, 'GET', `/m/1/jobs/${id}`).then((r) => r.json as JobView);
      const waiting = await until(job, (j) => j.status !== 'queued' && j.status !== 'running');
      expect(waiting.status).toBe('awaiting_refresh');
      const t0 = Date.now();
      const failed = await until(job, (j) => j.status !== 'awaiting_refresh');
      expect(failed.status).toBe('failed');
      expect(failed.error?.code).toBe('CIPHERML_E_REFRESH_TIMEOUT');
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect((await call(alice, 'GET', `/m/1/jobs/${id}/refresh`)).status).toBe(404);
      expect((await call(alice, 'PUT', `/m/1/jobs/${id}/refresh`, uploads['model']!)).status).toBe(409);
      // Freed: the inputs may change again and a new job starts.
      expect((await call(alice, 'PUT', '/m/1/model', uploads['model']!)).status).toBe(200);
      const next = await call(alice, 'POST', '/m/1/fit', hyper(1));
      expect(next.status).toBe(202);
      // A queued job is cancelled as well (its thread is stopped before it trains).
      expect((await call(alice, 'POST', `/m/1/jobs/${String(next.json['jobId'])}/cancel`)).json['status']).toBe('cancelled');
    } finally {
      await svc.close();
    }
  });
});

describe('open jobs hold their inputs; cancel', () => {
  let env: Awaited<ReturnType<typeof prepare>>;
  beforeAll(async () => {
    env = await prepare(join(root, 'cancel'), 60_000);
  });
  afterAll(async () => env?.svc.close());

  it('refuses every upload that would change an open job\'s inputs with CIPHERML_E_JOB_ACTIVE and changes no stored state; cancel frees them', { timeout: 60_000 }, async () => {
    const { svc, alice, bob, call } = env;
    const fit = await call(alice, 'POST', '/m/1/fit', hyper(2));
    const id = String(fit.json['jobId']);
    const job = () => call(alice, 'GET', `/m/1/jobs/${id}`).then((r) => r.json as JobView);
    await until(job, (j) => j.status === 'awaiting_refresh');
    const before = await snapshot(svc.storage, ['owner', 'alice', 'bob']);
    for (const seg of ['context/public', 'model', 'data/fit', 'model/trained']) {
      const r = await call(alice, 'PUT', `/m/1/${seg}`, uploads[seg === 'model/trained' ? 'model' : seg]!);
      expect([seg, r.status, (r.json['error'] as { code: string }).code]).toEqual([seg, 409, 'CIPHERML_E_JOB_ACTIVE']);
    }
    // A second fit is refused too; none of it left a trace.
    expect((await call(alice, 'POST', '/m/1/fit', hyper(2))).status).toBe(409);
    expect(await snapshot(svc.storage, ['owner', 'alice', 'bob'])).toEqual(before);
    expect((await job()).status).toBe('awaiting_refresh');

    // Another user can neither see nor cancel it.
    expect((await call(bob, 'POST', `/m/1/jobs/${id}/cancel`)).status).toBe(404);
    const listed = await call(alice, 'GET', '/m/1/jobs');
    expect((listed.json['jobs'] as JobView[]).map((j) => [j.jobId, j.status])).toEqual([[id, 'awaiting_refresh']]);
    expect((await call(bob, 'GET', '/m/1/jobs')).json).toEqual({ jobs: [] });
    // Across models (the console's Jobs page): alice's job under m/1, none of it for bob.
    expect(((await call(alice, 'GET', '/jobs')).json['models'] as { name: string; version: string; jobs: JobView[] }[]).map((m) => [m.name, m.version, m.jobs.map((j) => j.jobId)])).toEqual([['m', '1', [id]]]);
    expect((await call(bob, 'GET', '/jobs')).json).toEqual({ models: [{ name: 'm', version: '1', jobs: [] }] });

    const cancelled = await call(alice, 'POST', `/m/1/jobs/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ jobId: id, status: 'cancelled', error: { code: 'CIPHERML_E_JOB_CANCELLED' } });
    expect((await call(alice, 'POST', `/m/1/jobs/${id}/cancel`)).json).toMatchObject({ status: 'cancelled' });
    expect(((await job()).figures['log'] as { event: string }[]).map((e) => e.event)).toEqual(['queued', 'running', 'epoch', 'awaiting_refresh', 'cancelled']);
    // The refresh exchange is withdrawn and the job's thread is gone: nothing runs for alice.
    expect((await call(alice, 'GET', `/m/1/jobs/${id}/refresh`)).status).toBe(404);
    expect((await call(alice, 'PUT', `/m/1/jobs/${id}/refresh`, uploads['model']!)).status).toBe(409);
    await svc.idle();
    // Final: a worker's late update cannot bring it back.
    expect((await svc.storage.updateJob(id, { status: 'running' })).status).toBe('cancelled');
    expect((await job()).status).toBe('cancelled');
    expect((await call(alice, 'PUT', '/m/1/model', uploads['model']!)).status).toBe(200);
  });

  it('a job that already succeeded cannot be cancelled (409); a running job is stopped by cancel before it writes a checkpoint', { timeout: 60_000 }, async () => {
    const { svc, alice, call } = env;
    const one = await call(alice, 'POST', '/m/1/fit', hyper(1));
    const id = String(one.json['jobId']);
    await svc.idle();
    const done = (await call(alice, 'GET', `/m/1/jobs/${id}`)).json as JobView;
    expect(done.status).toBe('succeeded');
    // The job's event log and per-epoch times, as the console's Jobs page shows them.
    expect((done.figures['log'] as { event: string }[]).map((e) => e.event)).toEqual(['queued', 'running', 'epoch', 'succeeded']);
    expect(done.figures['epochMs']).toEqual([expect.any(Number)]);
    const late = await call(alice, 'POST', `/m/1/jobs/${id}/cancel`);
    expect([late.status, (late.json['error'] as { code: string }).code]).toEqual([409, 'CIPHERML_E_SERVICE_CONFLICT']);
    expect((await call(alice, 'GET', `/m/1/jobs/${id}`)).json['status']).toBe('succeeded');

    const before = await snapshot(svc.storage, ['alice']);
    const two = await call(alice, 'POST', '/m/1/fit', hyper(3));
    const id2 = String(two.json['jobId']);
    // Cancelled mid-epoch: its thread is stopped before the epoch's checkpoint is written.
    await until(() => call(alice, 'GET', `/m/1/jobs/${id2}`).then((r) => r.json as JobView), (j) => j.status !== 'queued');
    expect((await call(alice, 'POST', `/m/1/jobs/${id2}/cancel`)).json['status']).toBe('cancelled');
    await svc.idle();
    const after = (await call(alice, 'GET', `/m/1/jobs/${id2}`)).json as JobView;
    expect(after.status).toBe('cancelled');
    expect(after.figures['epochsDone']).toBeUndefined();
    const { 'm/1:alice:user': was } = before as Record<string, { blobs: Record<string, string> }>;
    const { 'm/1:alice:user': now } = (await snapshot(svc.storage, ['alice'])) as Record<string, { blobs: Record<string, string> }>;
    expect(now!.blobs).toEqual(was!.blobs);
  });
});
