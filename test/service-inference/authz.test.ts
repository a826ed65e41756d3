import { request } from 'node:http';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext, serializePublicContext } from '../../src/ckks/index.ts';
import { encryptSingle, GraphBuilder, parseOnnx, runPlain } from '../../src/inference/index.ts';
import { gatewayInfer } from '../../src/gateway/index.ts';
import type { KeyParams } from '../../src/inference/index.ts';
import { packDeployBundle } from '../../src/inference/service-wire.ts';
import { writeNpy } from '../../src/inference/npy.ts';
import { TRAIN_CKKS_PARAMETERS } from '../../src/ml/encrypted-lr.ts';
import { defences, resetDefences } from '../../src/core/defences.ts';
import { startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';
import { makeTokens } from './helpers.ts';

// Authorization of every inference route, and uploads refused without a trace in storage, on a
// tiny two-layer model (the MNIST flow is in test/slow/service-inference-flow.test.ts).
const root = mkdtempSync(join(tmpdir(), 'cipherml-svc-infer-authz-'));
let svc: RunningService;
let t: Awaited<ReturnType<typeof makeTokens>>;

function tinyModel(): Uint8Array {
  const b = new GraphBuilder(13);
  const x = b.input('x', [null, 4]);
  const w1 = { dims: [3, 4], data: Float64Array.from({ length: 12 }, (_, i) => ((i * 7) % 5) / 5 - 0.4) };
  const h = b.node('Gemm', [x, b.init('w1', w1), b.init('b1', { dims: [3], data: Float64Array.of(0.1, -0.2, 0.05) })], { transB: 1 });
  const sq = b.node('Mul', [h, h]);
  b.output(b.node('Gemm', [sq, b.init('w2', { dims: [2, 3], data: Float64Array.of(0.5, -0.3, 0.2, 0.1, 0.4, -0.6) })], { transB: 1 }), [null, 2]);
  return b.toBytes();
}
const calibration = writeNpy({ dims: [8, 4], data: Float64Array.from({ length: 32 }, (_, i) => Math.sin(i)) });

type Answer = { status: number; code?: string; body: Record<string, unknown> };
async function call(method: string, path: string, token?: string, body?: Uint8Array): Promise<Answer> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/octet-stream';
  const res = await fetch(`${svc.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: new Uint8Array(body) }) });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // binary
  }
  return { status: res.status, body: parsed, ...(typeof parsed['error'] === 'object' && parsed['error'] !== null ? { code: (parsed['error'] as { code: string }).code } : {}) };
}
/** A request that declares a body of `length` bytes and sends none: answered from its headers alone. */
function declared(path: string, token: string, method: string, length: number): Promise<{ status: number; code: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const u = new URL(`${svc.url}${path}`);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': String(length) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(Buffer.concat(parts).toString()) as { error: { code: string } }).error.code, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

const M = '/api/v1/tiny/1';
beforeAll(async () => {
  const dataDir = join(root, 'data');
  t = await makeTokens(dataDir);
  svc = await startService({ dataDir, port: 0, console: false });
});
afterAll(async () => {
  await svc?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('inference routes: authorization matrix and refused uploads', () => {
  it('answers every new route 401 without or with a malformed token, 403 for the wrong role or owner, 403/404 for another user', { timeout: 60_000 }, async () => {
    const bundle = packDeployBundle(tinyModel(), calibration);
    // Not deployed yet: the model URL is a typed 404.
    expect((await call('GET', M, t.alice)).code).toBe('CIPHERML_E_SERVICE_NOT_FOUND');
    expect((await call('POST', `${M}/deploy_model`, t.owner)).status).toBe(200);
    expect(await call('GET', M, t.alice)).toMatchObject({ status: 200, body: { modelUrl: M, inference: null } });
    const routes: [string, string, Uint8Array?][] = [
      ['GET', M], ['POST', `${M}/inference/deploy`, bundle], ['GET', `${M}/inference/keyparams`], ['GET', `${M}/inference/model`],
      ['PUT', `${M}/inference/keys`, new Uint8Array(16)], ['GET', `${M}/inference/keys`], ['POST', `${M}/inference`, new Uint8Array(16)],
      ['GET', `${M}/jobs/00000000-0000-0000-0000-000000000000/output`], ['GET', `${M}/jobs`], ['POST', `${M}/jobs/00000000-0000-0000-0000-000000000000/cancel`],
    ];
    for (const [method, path, body] of routes) {
      expect(await call(method, path, undefined, body), `${method} ${path} without a token`).toMatchObject({ status: 401, code: 'CIPHERML_E_SERVICE_UNAUTHENTICATED' });
      expect(await call(method, path, 'not-a-token', body), `${method} ${path} with an unknown token`).toMatchObject({ status: 401, code: 'CIPHERML_E_SERVICE_UNAUTHENTICATED' });
    }
    // Wrong role, and an owner who did not deploy this model.
    expect(await call('POST', `${M}/inference/deploy`, t.alice, bundle)).toMatchObject({ status: 403, code: 'CIPHERML_E_SERVICE_FORBIDDEN' });
    expect(await call('POST', `${M}/inference/deploy`, t.owner2, bundle)).toMatchObject({ status: 403, code: 'CIPHERML_E_SERVICE_FORBIDDEN' });
    expect((await call('GET', `${M}/inference/keyparams`, t.alice)).code).toBe('CIPHERML_E_SERVICE_NOT_FOUND');
    const dep = await call('POST', `${M}/inference/deploy`, t.owner, bundle);
    expect(dep).toMatchObject({ status: 200, body: { modelUrl: M, keyParamsUrl: `${M}/inference/keyparams` } });
    // Unregistered users reach the published model, not the per-user routes.
    expect((await call('GET', `${M}/inference/keyparams`, t.bob)).status).toBe(200);
    expect((await call('GET', `${M}/inference/model`, t.bob)).status).toBe(200);
    for (const [method, path, body] of routes.slice(4)) expect(await call(method, path, t.bob, body), `${method} ${path} unregistered`).toMatchObject({ status: 403, code: 'CIPHERML_E_SERVICE_FORBIDDEN' });
    expect((await call('POST', `${M}/application/register_user`, t.alice)).status).toBe(200);
    expect((await call('POST', `${M}/application/register_user`, t.bob)).status).toBe(200);
    // Registered users hold keys for the published keyparams: a new deploy is refused.
    expect(await call('POST', `${M}/inference/deploy`, t.owner, bundle)).toMatchObject({ status: 409, code: 'CIPHERML_E_SERVICE_CONFLICT' });

    const kp = (await call('GET', `${M}/inference/keyparams`, t.alice)).body as unknown as KeyParams;
    const alice = await CkksContext.create(kp.params, { galoisSteps: kp.galoisSteps });
    const other = await CkksContext.create(TRAIN_CKKS_PARAMETERS);
    try {
      const pub = serializePublicContext(alice);
      expect(await call('POST', `${M}/inference`, t.alice, encryptSingle(alice, [Float64Array.of(0.1, 0.2, 0.3, 0.4)], [4]))).toMatchObject({ status: 404, code: 'CIPHERML_E_SERVICE_NOT_FOUND' });
      const stored = await call('PUT', `${M}/inference/keys`, t.alice, pub);
      expect(stored).toMatchObject({ status: 200, body: { stored: 'inference_keys', fingerprint: alice.fingerprint } });
      const sha = (stored.body as { sha256: string }).sha256;
      const input = encryptSingle(alice, [Float64Array.of(0.1, 0.2, 0.3, 0.4)], [4]);
      const job = await call('POST', `${M}/inference`, t.alice, input);
      expect(job).toMatchObject({ status: 202, body: { status: 'queued' } });
      const jobId = (job.body as { jobId: string }).jobId;
      await svc.idle();
      expect(await call('GET', `${M}/jobs/${jobId}`, t.alice)).toMatchObject({ status: 200, body: { status: 'succeeded' } });
      expect((await call('GET', `${M}/jobs/${jobId}/output`, t.alice)).status).toBe(200);
      // Another user's job and output: not found, whoever asks.
      expect(await call('GET', `${M}/jobs/${jobId}`, t.bob)).toMatchObject({ status: 404, code: 'CIPHERML_E_SERVICE_NOT_FOUND' });
      expect(await call('GET', `${M}/jobs/${jobId}/output`, t.bob)).toMatchObject({ status: 404, code: 'CIPHERML_E_SERVICE_NOT_FOUND' });
      expect(await call('GET', `${M}/jobs/${jobId}/output`, t.owner)).toMatchObject({ status: 403, code: 'CIPHERML_E_SERVICE_FORBIDDEN' });
      expect(await call('POST', `${M}/jobs/${jobId}/cancel`, t.bob)).toMatchObject({ status: 404, code: 'CIPHERML_E_SERVICE_NOT_FOUND' });
      expect(await call('POST', `${M}/jobs/${jobId}/cancel`, t.alice)).toMatchObject({ status: 409, code: 'CIPHERML_E_SERVICE_CONFLICT' });
      expect((await call('GET', `${M}/jobs`, t.alice)).body).toMatchObject({ jobs: [{ jobId, kind: 'infer', status: 'succeeded' }] });
      expect((await call('GET', `${M}/jobs`, t.bob)).body).toEqual({ jobs: [] });
      // Bob has no keys; alice's are not his.
      expect(await call('GET', `${M}/inference/keys`, t.bob)).toMatchObject({ status: 404, code: 'CIPHERML_E_SERVICE_NOT_FOUND' });
      expect(await call('POST', `${M}/inference`, t.bob, input)).toMatchObject({ status: 404, code: 'CIPHERML_E_SERVICE_NOT_FOUND' });

      // Refused uploads change no stored state: the keys, jobs, input and output stay as they were.
      const model = (await svc.storage.getModel('tiny', '1'))!;
      const aliceRow = (await svc.storage.getUser('alice'))!;
      const snapshot = async (): Promise<unknown> => ({
        keys: await svc.storage.blobInfo(aliceRow.id, model.id, 'inference_keys'),
        input: await svc.storage.blobInfo(aliceRow.id, model.id, 'inference_input'),
        output: await svc.storage.blobInfo(aliceRow.id, model.id, 'inference_output'),
        jobs: (await svc.storage.listJobs({ userId: aliceRow.id })).map((j) => [j.id, j.status]),
        usage: await svc.storage.getUsage(aliceRow.id, model.id),
      });
      const before = await snapshot();
      const limits = (dep.body as { limits: { keysBytes: number; inputBytes: number } }).limits;
      expect(limits.keysBytes).toBeLessThan(4 * pub.length);
      const tooBigKeys = await declared(`${M}/inference/keys`, t.alice, 'PUT', limits.keysBytes + 1);
      expect(tooBigKeys).toMatchObject({ status: 413, code: 'CIPHERML_E_PAYLOAD_TOO_LARGE', connection: 'close' });
      const tooBigInput = await declared(`${M}/inference`, t.alice, 'POST', limits.inputBytes + 1);
      expect(tooBigInput).toMatchObject({ status: 413, code: 'CIPHERML_E_PAYLOAD_TOO_LARGE', connection: 'close' });
      const garbage = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131) & 0xff);
      expect((await call('PUT', `${M}/inference/keys`, t.alice, garbage)).status).toBe(400);
      expect((await call('POST', `${M}/inference`, t.alice, garbage)).status).toBe(400);
      // A truncated key set, keys of other parameters, and ciphertexts under another key set.
      expect((await call('PUT', `${M}/inference/keys`, t.alice, pub.subarray(0, pub.length >> 1))).status).toBe(400);
      expect(await call('PUT', `${M}/inference/keys`, t.alice, serializePublicContext(other))).toMatchObject({ status: 400, code: 'CIPHERML_E_KEY_MISMATCH' });
      expect(await call('POST', `${M}/inference`, t.alice, encryptSingle(other, [Float64Array.of(0.1, 0.2, 0.3, 0.4)], [4]))).toMatchObject({ status: 400, code: 'CIPHERML_E_KEY_MISMATCH' });
      expect(await snapshot()).toEqual(before);
      expect((await call('GET', `${M}/inference/keys`, t.alice)).body).toMatchObject({ sha256: sha });

      // Documented: every new route is in the OpenAPI document; the service answers /health and its version without a token.
      const spec = (await call('GET', '/api/v1/openapi.json')).body as { paths: Record<string, unknown> };
      for (const p of ['/api/v1/{model}/{version}', '/api/v1/{model}/{version}/inference/deploy', '/api/v1/{model}/{version}/inference/keys', '/api/v1/{model}/{version}/inference', '/api/v1/{model}/{version}/jobs/{jobId}/output', '/health']) expect(Object.keys(spec.paths)).toContain(p);
      expect(await call('GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
      expect(await call('GET', '/api/v1/info/version')).toMatchObject({ status: 200, body: { service: 'cipherml', scheme: 'CKKS' } });
    } finally {
      alice.delete();
      other.delete();
    }
  });

  it('adversary: an oversize but valid key set (extra rotation keys) is refused by the keyparams bound; without the defence it is stored', { timeout: 60_000 }, async () => {
    const M2 = '/api/v1/tiny/2';
    expect((await call('POST', `${M2}/deploy_model`, t.owner)).status).toBe(200);
    const dep = await call('POST', `${M2}/inference/deploy`, t.owner, packDeployBundle(tinyModel(), calibration));
    const keysBytes = (dep.body as { limits: { keysBytes: number } }).limits.keysBytes;
    expect((await call('POST', `${M2}/application/register_user`, t.alice)).status).toBe(200);
    const kp = (await call('GET', `${M2}/inference/keyparams`, t.alice)).body as unknown as KeyParams;
    const extra: number[] = [];
    for (let step = 1; extra.length < Math.max(4, Math.ceil(kp.galoisSteps.length * 0.4) + 2); step++) if (!kp.galoisSteps.includes(step)) extra.push(step);
    const bloated = await CkksContext.create(kp.params, { galoisSteps: [...kp.galoisSteps, ...extra] });
    try {
      const pub = serializePublicContext(bloated);
      expect(pub.length).toBeGreaterThan(keysBytes);
      const model = (await svc.storage.getModel('tiny', '2'))!;
      const aliceRow = (await svc.storage.getUser('alice'))!;
      expect(await call('PUT', `${M2}/inference/keys`, t.alice, pub)).toMatchObject({ status: 413, code: 'CIPHERML_E_PAYLOAD_TOO_LARGE' });
      expect(await svc.storage.blobInfo(aliceRow.id, model.id, 'inference_keys')).toBeUndefined();
      defences.inferenceUploadBounds = false;
      try {
        expect((await call('PUT', `${M2}/inference/keys`, t.alice, pub)).status).toBe(200);
        expect((await svc.storage.blobInfo(aliceRow.id, model.id, 'inference_keys'))?.size).toBe(pub.length);
      } finally {
        resetDefences();
      }
      // Undeploying (after the user unregistered) removes the published calibrated model and keyparams.
      const ownerRow = (await svc.storage.getUser('owner'))!;
      expect((await call('DELETE', `${M2}/application/unregister_user`, t.alice)).status).toBe(200);
      expect((await call('DELETE', `${M2}/undeploy_model`, t.owner)).status).toBe(200);
      expect(await svc.storage.blobInfo(ownerRow.id, model.id, 'inference_model')).toBeUndefined();
      expect(await svc.storage.blobInfo(ownerRow.id, model.id, 'inference_keyparams')).toBeUndefined();
      expect((await call('GET', M2, t.alice)).code).toBe('CIPHERML_E_SERVICE_NOT_FOUND');
    } finally {
      bloated.delete();
    }
  });

  it('gateway: reuses its keys without uploading them again, and refuses a secret key file readable by others (mode left as it was)', { timeout: 60_000 }, async () => {
    const keyDir = join(root, 'keys-bob');
    const input = { dims: [2, 4], data: Float64Array.of(0.3, -0.1, 0.7, 0.2, -0.4, 0.5, 0.1, 0.9) };
    const first = await gatewayInfer({ service: svc.url, token: t.bob, model: 'tiny/1', keyDir, input, pollMs: 20 });
    expect(first).toMatchObject({ keysGenerated: true, keysUploaded: true });
    const plain = runPlain(parseOnnx(tinyModel()), input);
    for (let i = 0; i < 4; i++) expect(Math.abs(first.output.data[i]! - plain.data[i]!)).toBeLessThan(1e-2);
    const again = await gatewayInfer({ service: svc.url, token: t.bob, model: 'tiny/1', keyDir, input, pollMs: 20 });
    expect(again).toMatchObject({ keysGenerated: false, keysUploaded: false, fingerprint: first.fingerprint });
    const key = join(keyDir, 'tiny@1', 'he-key');
    chmodSync(key, 0o644);
    await expect(gatewayInfer({ service: svc.url, token: t.bob, model: 'tiny/1', keyDir, input })).rejects.toMatchObject({ code: 'CIPHERML_E_IO', param: '--key-dir' });
    expect(statSync(key).mode & 0o777).toBe(0o644);
  });
});
