import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';

/**
 * The console's tables on PostgreSQL (the service's `--db`): the same SQL as on SQLite. Runs
 * when CIPHERML_TEST_POSTGRES_URL is set (.ci/run sets it); names carry a random suffix because
 * the test database is shared and kept between runs.
 */

const pg = process.env['CIPHERML_TEST_POSTGRES_URL'];
if (pg === undefined || pg === '') console.warn('console PostgreSQL test SKIPPED: CIPHERML_TEST_POSTGRES_URL is not set');

describe.skipIf(pg === undefined || pg === '')('console accounts on PostgreSQL', () => {
  let dir: string;
  let svc: RunningService;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cml-console-pg-'));
    svc = await startService({ dataDir: dir, db: pg, port: 0, heavyThreads: 1, console: { scryptCost: { N: 2 ** 14, r: 8, p: 1 } } });
  });
  afterAll(async () => {
    await svc?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sign-up, sign-in, a named token that authenticates until revoked, sign-out', async () => {
    const name = `pg-${randomBytes(6).toString('hex')}`;
    const json = { 'content-type': 'application/json' };
    const up = await fetch(`${svc.url}/api/v1/console/signup`, { method: 'POST', headers: json, body: JSON.stringify({ name, password: 'correct horse battery' }) });
    expect(up.status).toBe(200);
    expect((await fetch(`${svc.url}/api/v1/console/signup`, { method: 'POST', headers: json, body: JSON.stringify({ name, password: 'correct horse battery' }) })).status).toBe(409);
    expect((await fetch(`${svc.url}/api/v1/console/signin`, { method: 'POST', headers: json, body: JSON.stringify({ name, password: 'wrong password!!' }) })).status).toBe(401);
    const inn = await fetch(`${svc.url}/api/v1/console/signin`, { method: 'POST', headers: json, body: JSON.stringify({ name, password: 'correct horse battery' }) });
    expect(inn.status).toBe(200);
    const cookie = /^(cml_session=[^;]*)/.exec(inn.headers.get('set-cookie')!)![1]!;
    const csrf = ((await inn.json()) as { csrfToken: string }).csrfToken;
    const s = { cookie, 'x-csrf-token': csrf };
    const made = (await (await fetch(`${svc.url}/api/v1/console/tokens`, { method: 'POST', headers: { ...json, ...s }, body: JSON.stringify({ name: 'ci', expiresDays: 1 }) })).json()) as { id: string; token: string };
    expect((await fetch(`${svc.url}/api/v1/models`, { headers: { authorization: `Bearer ${made.token}` } })).status).toBe(200);
    const list = (await (await fetch(`${svc.url}/api/v1/console/tokens`, { headers: s })).json()) as { tokens: { id: string; name: string; status: string }[] };
    expect(list.tokens.map((t) => [t.id, t.name, t.status])).toEqual([[made.id, 'ci', 'active']]);
    expect((await fetch(`${svc.url}/api/v1/console/tokens/${made.id}`, { method: 'DELETE', headers: s })).status).toBe(200);
    expect((await fetch(`${svc.url}/api/v1/models`, { headers: { authorization: `Bearer ${made.token}` } })).status).toBe(401);
    expect((await fetch(`${svc.url}/api/v1/console/signout`, { method: 'POST', headers: s })).status).toBe(200);
    expect((await fetch(`${svc.url}/api/v1/console/session`, { headers: s })).status).toBe(401);
  });
});
