import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defences, resetDefences } from '../../src/core/defences.ts';
import { OPENAPI_DOCUMENT, startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';

/**
 * The web console's accounts, sessions and API tokens over real HTTP against the real service
 * (SQLite storage, scrypt at the recommended cost). Adversaries: a network client guessing
 * passwords (rate limit), a cross-site page riding the victim's session cookie (CSRF/Origin),
 * a stolen but expired session cookie, another signed-in user (token revocation).
 */

let dir: string;
let svc: RunningService;
let clock = Date.now();
const WINDOW = 60_000;
const TTL = 3_600_000;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cml-console-'));
  // scrypt at N = 2^14 keeps this default-suite file fast; the production cost (N = 2^17) is
  // checked in src/console/password.test.ts and used by the browser test (test/slow).
  svc = await startService({ dataDir: dir, port: 0, heavyThreads: 1, console: { now: () => clock, sessionTtlMs: TTL, scryptCost: { N: 2 ** 14, r: 8, p: 1 }, limits: { failuresPerName: 3, failuresPerAddress: 100, windowMs: WINDOW } } });
});
afterAll(async () => {
  resetDefences();
  await svc.close();
  await rm(dir, { recursive: true, force: true });
});

interface Res { status: number; body: Record<string, unknown>; headers: Headers }
async function call(method: string, path: string, opts: { body?: unknown; cookie?: string; csrf?: string; origin?: string; bearer?: string } = {}): Promise<Res> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.cookie !== undefined) headers['cookie'] = opts.cookie;
  if (opts.csrf !== undefined) headers['x-csrf-token'] = opts.csrf;
  if (opts.origin !== undefined) headers['origin'] = opts.origin;
  if (opts.bearer !== undefined) headers['authorization'] = `Bearer ${opts.bearer}`;
  const r = await fetch(`${svc.url}${path}`, { method, headers, ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }) });
  const text = await r.text();
  return { status: r.status, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text }, headers: r.headers };
}
const code = (r: Res): unknown => (r.body['error'] as { code?: string } | undefined)?.code;
const cookieOf = (r: Res): string => /^(cml_session=[^;]*)/.exec(r.headers.get('set-cookie') ?? '')![1]!;

async function signUp(name: string, password = 'correct horse battery'): Promise<{ cookie: string; csrf: string }> {
  const r = await call('POST', '/api/v1/console/signup', { body: { name, password } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return { cookie: cookieOf(r), csrf: String(r.body['csrfToken']) };
}

describe('console accounts', () => {
  it('sign-up sets an httpOnly SameSite=Strict session cookie and the security headers', async () => {
    const r = await call('POST', '/api/v1/console/signup', { body: { name: 'alice', password: 'correct horse battery' } });
    expect(r.status).toBe(200);
    const sc = r.headers.get('set-cookie')!;
    expect(sc).toMatch(/HttpOnly/);
    expect(sc).toMatch(/SameSite=Strict/);
    expect(sc).toMatch(/Path=\//);
    expect(r.headers.get('content-security-policy')).toBe("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.body['user']).toEqual({ name: 'alice', role: 'user' });
    const s = await call('GET', '/api/v1/console/session', { cookie: cookieOf(r) });
    expect(s.status).toBe(200);
    expect(s.body['csrfToken']).toBe(r.body['csrfToken']);
  });

  it('refuses a taken name, including a service user made by `serve token create`', async () => {
    await svc.storage.ensureUser('operator', 'owner');
    const r = await call('POST', '/api/v1/console/signup', { body: { name: 'operator', password: 'correct horse battery' } });
    expect([r.status, code(r)]).toEqual([409, 'CIPHERML_E_SERVICE_CONFLICT']);
    expect((r.body['error'] as { param: string }).param).toBe('name');
    const again = await call('POST', '/api/v1/console/signup', { body: { name: 'alice', password: 'another long password' } });
    expect(again.status).toBe(409);
  });

  it('refuses short passwords and unknown fields before hashing', async () => {
    expect((await call('POST', '/api/v1/console/signup', { body: { name: 'bob', password: 'short' } })).status).toBe(400);
    expect((await call('POST', '/api/v1/console/signup', { body: { name: 'bob', password: 'correct horse battery', role: 'owner' } })).status).toBe(400);
    expect(await svc.storage.getUser('bob')).toBeUndefined();
  });

  it('refuses a wrong password and an unknown name with the same answer', async () => {
    const wrong = await call('POST', '/api/v1/console/signin', { body: { name: 'alice', password: 'wrong password here' } });
    const unknown = await call('POST', '/api/v1/console/signin', { body: { name: 'nobody', password: 'wrong password here' } });
    expect([wrong.status, code(wrong)]).toEqual([401, 'CIPHERML_E_SERVICE_UNAUTHENTICATED']);
    expect(unknown.body).toEqual(wrong.body);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const ok = await call('POST', '/api/v1/console/signin', { body: { name: 'alice', password: 'correct horse battery' } });
    expect(ok.status).toBe(200);
  });

  it('locks a name after 3 failed sign-ins, even for the right password, until the window ends (and not without the defence)', async () => {
    await signUp('carol');
    const attempt = (password: string): Promise<Res> => call('POST', '/api/v1/console/signin', { body: { name: 'carol', password } });
    for (let i = 0; i < 3; i++) expect((await attempt('guess number ' + i)).status).toBe(401);
    const locked = await attempt('correct horse battery');
    expect([locked.status, code(locked)]).toEqual([429, 'CIPHERML_E_SERVICE_BUSY']);
    expect((locked.body['error'] as { param: string }).param).toBe('name');
    defences.consoleSignInLimit = false;
    try {
      // The guesser without the limit: the fourth guess is checked (here it is right).
      expect((await attempt('correct horse battery')).status).toBe(200);
    } finally {
      resetDefences();
    }
    clock += WINDOW + 1;
    expect((await attempt('correct horse battery')).status).toBe(200);
  });

  it('refuses state changes without the CSRF token or from another origin (and not without the defence)', async () => {
    const { cookie, csrf } = await signUp('dave');
    const create = (o: { csrf?: string; origin?: string }): Promise<Res> => call('POST', '/api/v1/console/tokens', { cookie, body: { name: 'ci', expiresDays: 30 }, ...o });
    const missing = await create({});
    expect([missing.status, code(missing)]).toEqual([403, 'CIPHERML_E_SERVICE_FORBIDDEN']);
    expect((missing.body['error'] as { param: string }).param).toBe('X-CSRF-Token');
    expect((await create({ csrf: csrf.slice(1) + 'x' })).status).toBe(403);
    const cross = await create({ csrf, origin: 'https://evil.example' });
    expect([cross.status, (cross.body['error'] as { param: string }).param]).toEqual([403, 'Origin']);
    expect((await call('GET', '/api/v1/console/tokens', { cookie })).body['tokens']).toEqual([]);
    // Login CSRF: a cross-site form signing the victim into the attacker's account.
    expect((await call('POST', '/api/v1/console/signin', { body: { name: 'dave', password: 'correct horse battery' }, origin: 'https://evil.example' })).status).toBe(403);
    defences.consoleCsrf = false;
    try {
      expect((await create({ origin: 'https://evil.example' })).status).toBe(200);
    } finally {
      resetDefences();
    }
    expect((await create({ csrf, origin: svc.url })).status).toBe(200);
  });

  it('refuses an expired session and a signed-out one', async () => {
    const { cookie, csrf } = await signUp('erin');
    expect((await call('GET', '/api/v1/console/tokens', { cookie })).status).toBe(200);
    clock += TTL + 1;
    const expired = await call('GET', '/api/v1/console/tokens', { cookie });
    expect([expired.status, code(expired)]).toEqual([401, 'CIPHERML_E_SERVICE_UNAUTHENTICATED']);
    const s = await call('POST', '/api/v1/console/signin', { body: { name: 'erin', password: 'correct horse battery' } });
    const fresh = cookieOf(s);
    expect((await call('POST', '/api/v1/console/signout', { cookie: fresh })).status).toBe(403);
    const out = await call('POST', '/api/v1/console/signout', { cookie: fresh, csrf: String(s.body['csrfToken']) });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    expect((await call('GET', '/api/v1/console/session', { cookie: fresh })).status).toBe(401);
    expect((await call('GET', '/api/v1/console/session', {})).status).toBe(401);
    expect((await call('GET', '/api/v1/console/session', { cookie: 'cml_session=' + 'A'.repeat(43) })).status).toBe(401);
    void csrf;
  });

  it('creates a named token shown once, which authenticates on the REST API until revoked; another user cannot revoke it', async () => {
    const { cookie, csrf } = await signUp('frank');
    const made = await call('POST', '/api/v1/console/tokens', { cookie, csrf, body: { name: 'laptop', expiresDays: 7 } });
    expect(made.status).toBe(200);
    const token = String(made.body['token']);
    expect(token).toMatch(/^cml_/);
    expect(Number(made.body['expiresAt'])).toBeGreaterThan(clock + 6 * 86_400_000);
    expect((await call('GET', '/api/v1/models', { bearer: token })).status).toBe(200);
    const list = await call('GET', '/api/v1/console/tokens', { cookie });
    expect(JSON.stringify(list.body)).not.toContain(token);
    expect(list.body['tokens']).toEqual([{ id: made.body['id'], name: 'laptop', createdAt: expect.any(Number), expiresAt: made.body['expiresAt'], status: 'active' }]);
    const other = await signUp('grace');
    const theft = await call('DELETE', `/api/v1/console/tokens/${String(made.body['id'])}`, { cookie: other.cookie, csrf: other.csrf });
    expect([theft.status, code(theft)]).toEqual([404, 'CIPHERML_E_SERVICE_NOT_FOUND']);
    expect((await call('GET', '/api/v1/models', { bearer: token })).status).toBe(200);
    const revoked = await call('DELETE', `/api/v1/console/tokens/${String(made.body['id'])}`, { cookie, csrf });
    expect(revoked.status).toBe(200);
    const refused = await call('GET', '/api/v1/models', { bearer: token });
    expect([refused.status, code(refused)]).toEqual([401, 'CIPHERML_E_SERVICE_UNAUTHENTICATED']);
    expect(((await call('GET', '/api/v1/console/tokens', { cookie })).body['tokens'] as { status: string }[])[0]!.status).toBe('revoked');
    expect((await call('POST', '/api/v1/console/tokens', { cookie, csrf, body: { name: 'x', expiresDays: 0 } })).status).toBe(400);
    // At most 50 active tokens per user: the 51st is refused and nothing is stored for it.
    for (let i = 0; i < 50; i++) expect((await call('POST', '/api/v1/console/tokens', { cookie, csrf, body: { name: `t${i}`, expiresDays: 1 } })).status).toBe(200);
    const over = await call('POST', '/api/v1/console/tokens', { cookie, csrf, body: { name: 'one too many', expiresDays: 1 } });
    expect([over.status, code(over)]).toEqual([409, 'CIPHERML_E_SERVICE_CONFLICT']);
    expect(((await call('GET', '/api/v1/console/tokens', { cookie })).body['tokens'] as unknown[]).length).toBe(51);
    expect((await call('POST', '/api/v1/console/tokens', { cookie, csrf, body: { name: 'x', expiresDays: 366 } })).status).toBe(400);
  });

  it('lets a console session call the REST API without a bearer token, with the CSRF token on state changes', async () => {
    const { cookie, csrf } = await signUp('judy');
    const owner = await svc.storage.createToken((await svc.storage.ensureUser('owner-j', 'owner')).id);
    expect((await call('POST', '/api/v1/lr/9/deploy_model', { bearer: owner })).status).toBe(200);
    expect((await call('GET', '/api/v1/models', { cookie })).status).toBe(200);
    const noCsrf = await call('POST', '/api/v1/lr/9/application/register_user', { cookie });
    expect([noCsrf.status, code(noCsrf)]).toEqual([403, 'CIPHERML_E_SERVICE_FORBIDDEN']);
    expect((await call('POST', '/api/v1/lr/9/application/register_user', { cookie, csrf, origin: 'https://evil.example' })).status).toBe(403);
    const user = (await svc.storage.getUser('judy'))!;
    const model = (await svc.storage.getModel('lr', '9'))!;
    expect(await svc.storage.isRegistered(user.id, model.id)).toBe(false);
    expect((await call('POST', '/api/v1/lr/9/application/register_user', { cookie, csrf })).status).toBe(200);
    expect(await svc.storage.isRegistered(user.id, model.id)).toBe(true);
    // A console user has role user: owner routes stay refused.
    expect((await call('POST', '/api/v1/lr/10/deploy_model', { cookie, csrf })).status).toBe(403);
    // No cookie, a bad cookie, an expired session: 401 as for a missing token.
    expect((await call('GET', '/api/v1/models', {})).status).toBe(401);
    expect((await call('GET', '/api/v1/models', { cookie: 'cml_session=nope' })).status).toBe(401);
    clock += TTL + 1;
    expect((await call('GET', '/api/v1/models', { cookie })).status).toBe(401);
  });

  it("keeps the browser's sealed key record as opaque bytes for its owner only", async () => {
    const { cookie, csrf } = await signUp('heidi');
    const record = new Uint8Array(200_000).map((_, i) => (i * 7919) & 255);
    const put = (o: { cookie: string; csrf?: string; body: Uint8Array }): Promise<Response> =>
      fetch(`${svc.url}/api/v1/console/keys`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', cookie: o.cookie, ...(o.csrf === undefined ? {} : { 'x-csrf-token': o.csrf }) }, body: o.body });
    expect((await fetch(`${svc.url}/api/v1/console/keys`, { headers: { cookie } })).status).toBe(404);
    expect((await put({ cookie, body: record })).status).toBe(403);
    expect((await put({ cookie, csrf, body: new Uint8Array(0) })).status).toBe(400);
    const big = await put({ cookie, csrf, body: new Uint8Array((4 << 20) + 1) });
    expect(big.status).toBe(413);
    expect((await fetch(`${svc.url}/api/v1/console/keys`, { headers: { cookie } })).status).toBe(404);
    const ok = await put({ cookie, csrf, body: record });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { size: number }).size).toBe(200_000);
    const back = await fetch(`${svc.url}/api/v1/console/keys`, { headers: { cookie } });
    expect(Buffer.from(await back.arrayBuffer()).equals(Buffer.from(record))).toBe(true);
    const other = await signUp('ivan');
    expect((await fetch(`${svc.url}/api/v1/console/keys`, { headers: { cookie: other.cookie } })).status).toBe(404);
  });

  it('serves the browser app at / under the CSP, and documents the console routes in OpenAPI', async () => {
    const r = await fetch(`${svc.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(r.headers.get('content-security-policy')).toMatch(/script-src 'self' 'wasm-unsafe-eval'/);
    const html = await r.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const src = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const js = await fetch(`${svc.url}${src}`);
    expect([js.status, js.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
    expect((await fetch(`${svc.url}/assets/..%2Fpackage.json`)).status).toBe(404);
    const paths = OPENAPI_DOCUMENT.paths;
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(['/api/v1/console/signup', '/api/v1/console/signin', '/api/v1/console/tokens', '/api/v1/console/tokens/{id}']));
    expect((paths['/api/v1/console/tokens']!['post'] as { security: unknown }).security).toEqual([{ session: [] }]);
  });
});
