import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Compile } from 'typebox/compile';
import { CkksContext, encryptToBytes, serializePublicContext } from '../../src/ckks/index.ts';
import { openStorage, startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';
import { ErrorBody } from '../../src/service/schemas.ts';
import { ckksBomb, deepJson } from '../../bench/bombs.ts';
import { errorCode, rawRequest } from './http.ts';

// Adversary: any client of the service's port: anonymous, or a registered user of a deployed
// model (any token holder can register). Every attack runs over real HTTP on loopback against
// the protected service, and the ones that crashed or stalled it before issue 13 also against
// the naive baseline (unsafeNaive), where the same test must fail.

const root = mkdtempSync(join(tmpdir(), 'cipherml-robust-svc-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const isError = Compile(ErrorBody);
const MiB = 1 << 20;

async function setup(dataDir: string): Promise<{ owner: string; alice: string; bob: string }> {
  const s = await openStorage({ dataDir });
  const owner = await s.createToken((await s.ensureUser('owner', 'owner')).id);
  const alice = await s.createToken((await s.ensureUser('alice', 'user')).id);
  const bob = await s.createToken((await s.ensureUser('bob', 'owner')).id);
  await s.close();
  return { owner, alice, bob };
}

describe('service under hostile input (real HTTP on loopback)', () => {
  let svc: RunningService;
  let t: { owner: string; alice: string; bob: string };
  let ctx: CkksContext;
  const auth = (tok: string) => ({ authorization: `Bearer ${tok}` });
  const url = (p: string) => `${svc.url}/api/v1${p}`;

  beforeAll(async () => {
    const dataDir = join(root, 'protected');
    t = await setup(dataDir);
    svc = await startService({ dataDir, port: 0, maxBodyBytes: 64 * MiB });
    expect((await fetch(url('/m/1/deploy_model'), { method: 'POST', headers: auth(t.owner) })).status).toBe(200);
    expect((await fetch(url('/m/1/application/register_user'), { method: 'POST', headers: auth(t.alice) })).status).toBe(200);
    ctx = await CkksContext.create({ polyModulusDegree: 4096, coeffModulusBits: [40, 20, 40], scaleBits: 20 });
    const put = (p: string, b: Uint8Array) => fetch(url(p), { method: 'PUT', headers: { ...auth(t.alice), 'content-type': 'application/octet-stream' }, body: b });
    expect((await put('/m/1/context/public', serializePublicContext(ctx))).status).toBe(200);
    expect((await put('/m/1/model/trained', encryptToBytes(ctx, [[0.5]]))).status).toBe(200);
  });
  afterAll(async () => {
    ctx?.delete();
    await svc?.close();
  });

  it('refuses 16 KB zstd bombs declaring 512 MiB (public context and /predict) before allocating, and keeps serving', async () => {
    const bombs = { pub: await ckksBomb('publicKey', 512 * MiB), predict: await ckksBomb('ciphertext', 512 * MiB, ctx.fingerprint) };
    expect(bombs.pub.length).toBeLessThan(20_000);
    const send = (p: string, b: Uint8Array) => rawRequest(url(p), { method: p.includes('predict') ? 'POST' : 'PUT', headers: { ...auth(t.alice), 'content-type': 'application/octet-stream' }, body: b });
    // Warm-up: both worker threads started, SEAL loaded and the user's key set parsed once in each
    // (a fixed cost of any predict, not the bomb's).
    for (let i = 0; i < 3; i++) await Promise.all([send('/m/1/predict?features=1', bombs.predict), send('/m/1/predict?features=1', bombs.predict)]);
    const rss0 = process.memoryUsage().rss;
    const [a, b, c, list] = await Promise.all([
      send('/m/1/context/public', bombs.pub),
      send('/m/1/predict?features=1', bombs.predict),
      send('/m/1/predict?features=1', bombs.predict),
      fetch(url('/models'), { headers: auth(t.owner) }),
    ]);
    for (const r of [a, b]) {
      expect(r.status).toBe(400);
      expect(errorCode(r.body)).toBe('CIPHERML_E_INPUT_TOO_LARGE');
      expect(isError.Check(JSON.parse(r.body))).toBe(true);
    }
    // Two heavy requests per user at once: the third waits for nothing, it is told to retry.
    expect([400, 429]).toContain(c.status);
    expect(list.status).toBe(200);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(16 * MiB);
    // The refused upload changed nothing: the stored public context is the one uploaded before.
    const stored = await fetch(url('/m/1/context/public'), { headers: auth(t.alice) });
    expect(Buffer.from(await stored.arrayBuffer()).equals(Buffer.from(serializePublicContext(ctx)))).toBe(false); // re-serialized with fresh seeds
    expect((await svc.storage.blobInfo((await svc.storage.getUser('alice'))!.id, (await svc.storage.getModel('m', '1'))!.id, 'public_context'))?.size).toBeGreaterThan(1000);
  });

  it('answers anonymous callers 401 before reading the body (401 before 413), and enforces per-route body limits', async () => {
    // Declares 250 MB and sends 1 KB: the answer comes without the rest of the body.
    const anon = await rawRequest(url('/m/1/context/public'), { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(250_000_000) }, body: new Uint8Array(1024), endBody: false });
    expect(anon.status).toBe(401);
    expect(errorCode(anon.body)).toBe('CIPHERML_E_SERVICE_UNAUTHENTICATED');
    expect(anon.headers['connection']).toBe('close');
    const big = await rawRequest(url('/m/1/context/public'), { method: 'PUT', headers: { ...auth(t.alice), 'content-type': 'application/octet-stream', 'content-length': String(250_000_000) }, body: new Uint8Array(1024), endBody: false });
    expect(big.status).toBe(413);
    expect(errorCode(big.body)).toBe('CIPHERML_E_PAYLOAD_TOO_LARGE');
    // JSON routes take 64 KiB, not the upload limit.
    const json = await rawRequest(url('/m/1/add_profile'), { method: 'POST', headers: { ...auth(t.alice), 'content-type': 'application/json' }, body: `{"batchSize":1${' '.repeat(100_000)}}` });
    expect(json.status).toBe(413);
  });

  it('refuses 5,000-deep JSON with a typed 400, and profiles that do not match the schema', async () => {
    const post = (body: string) => rawRequest(url('/m/1/add_profile'), { method: 'POST', headers: { ...auth(t.alice), 'content-type': 'application/json' }, body });
    const deep = await post(deepJson(5000));
    expect(deep.status).toBe(400);
    expect(errorCode(deep.body)).toBe('CIPHERML_E_JSON_INVALID');
    const deep1000 = await post(`{"x":${'['.repeat(1000)}${']'.repeat(1000)}}`);
    expect(deep1000.status).toBe(400);
    const extra = await post('{"batchSize":32,"notes":{"a":[1,2,3]}}');
    expect(extra.status).toBe(400);
    expect(JSON.parse(extra.body)).toMatchObject({ error: { code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'notes' } });
    const wrongType = await post('{"batchSize":"many"}');
    expect(JSON.parse(wrongType.body)).toMatchObject({ error: { code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'batchSize' } });
    const ok = await post('{"batchSize":32}');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ profile: { batchSize: 32 } });
    expect(await svc.storage.getProfile((await svc.storage.getUser('alice'))!.id, (await svc.storage.getModel('m', '1'))!.id)).toEqual({ batchSize: 32 });
  });

  it('gives 414 and 431 typed error bodies, and a second owner deploying an existing model a 409', async () => {
    const longName = await rawRequest(url(`/${'a'.repeat(200)}/1/deploy_model`), { method: 'POST', headers: auth(t.owner) });
    expect(longName.status).toBe(414);
    expect(errorCode(longName.body)).toBe('CIPHERML_E_URI_TOO_LONG');
    const headers = await rawRequest(url('/models'), { method: 'GET', headers: { ...auth(t.owner), 'x-pad': 'x'.repeat(20_000) } }).catch(() => ({ status: 0, headers: {}, body: '' }));
    expect(headers.status).toBe(431);
    expect(errorCode(headers.body)).toBe('CIPHERML_E_HEADERS_TOO_LARGE');
    const again = await rawRequest(url('/m/1/deploy_model'), { method: 'POST', headers: auth(t.bob) });
    expect(again.status).toBe(409);
    expect(errorCode(again.body)).toBe('CIPHERML_E_SERVICE_CONFLICT');
    expect((await svc.storage.getModel('m', '1'))?.ownerId).toBe((await svc.storage.getUser('owner'))!.id);
    expect((await rawRequest(url('/m/1/deploy_model'), { method: 'POST', headers: auth(t.owner) })).status).toBe(200);
  });

  it('refuses revoked and expired tokens', async () => {
    const s = svc.storage;
    const carol = await s.ensureUser('carol', 'user');
    const tok = await s.createToken(carol.id);
    const expired = await s.createToken(carol.id, { expiresAt: Date.now() - 1 });
    const list = (tk: string) => rawRequest(url('/models'), { method: 'GET', headers: auth(tk) });
    expect((await list(tok)).status).toBe(200);
    expect((await list(expired)).status).toBe(401);
    const id = (await s.listTokens()).find((r) => r.user === 'carol' && r.status === 'active')!.id;
    expect(await s.revokeTokens({ id })).toBe(1);
    expect((await list(tok)).status).toBe(401);
    expect((await s.listTokens()).filter((r) => r.user === 'carol').map((r) => r.status).sort()).toEqual(['expired', 'revoked']);
  });
});

describe('the naive baseline fails the same attacks (the tests can fail)', () => {
  it('without the defences: 413 before 401, a 500 for deep JSON, and the 16 KB bomb kills the process', async () => {
    const dataDir = join(root, 'naive');
    const t = await setup(dataDir);
    const child = spawn(process.execPath, ['--max-old-space-size=192', join(import.meta.dirname, '..', '..', 'bench', 'service-child.ts'), dataDir, '--naive'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const base = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => resolve(d.toString().trim()));
        child.on('exit', () => reject(new Error('naive service exited early')));
      });
      const url = (p: string) => `${base}/api/v1${p}`;
      const auth = (tok: string) => ({ authorization: `Bearer ${tok}` });
      await rawRequest(url('/m/1/deploy_model'), { method: 'POST', headers: auth(t.owner) });
      await rawRequest(url('/m/1/application/register_user'), { method: 'POST', headers: auth(t.alice) });
      const anon = await rawRequest(url('/m/1/context/public'), { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(250_000_000) }, body: new Uint8Array(1024), endBody: false });
      expect(anon.status).not.toBe(401);
      const deep = await rawRequest(url('/m/1/add_profile'), { method: 'POST', headers: { ...auth(t.alice), 'content-type': 'application/json' }, body: deepJson(5000) });
      expect(deep.status).not.toBe(400);
      const bomb = await ckksBomb('publicKey', 512 * MiB);
      const r = await rawRequest(url('/m/1/context/public'), { method: 'PUT', headers: { ...auth(t.alice), 'content-type': 'application/octet-stream' }, body: bomb }).catch((e: unknown) => e as Error);
      expect(r).toBeInstanceOf(Error);
      expect(await exited).not.toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
