import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../src/service/index.ts';
import { cli } from '../helpers.ts';

// `cipherml serve token …` as an operator runs it (separate processes, a real data folder).
describe('serve token create / role / list / revoke', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-token-cli-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('never changes a role implicitly, lists without secrets, revokes and expires', async () => {
    const data = join(dir, 'data');
    const first = JSON.parse((await cli('serve', 'token', 'create', '--data', data, '--user', 'ann', '--role', 'owner', '--json')).stdout) as { token: string; role: string };
    expect(first.role).toBe('owner');
    // An existing user: no --role keeps it; a different --role is refused and names the command.
    const again = JSON.parse((await cli('serve', 'token', 'create', '--data', data, '--user', 'ann', '--expires-days', '1', '--json')).stdout) as { role: string; expiresAt: number };
    expect(again.role).toBe('owner');
    expect(again.expiresAt).toBeGreaterThan(Date.now());
    const clash = await cli('serve', 'token', 'create', '--data', data, '--user', 'ann', '--role', 'user', '--json');
    expect(clash.code).toBe(1);
    expect(JSON.parse(clash.stdout).error).toMatchObject({ code: 'CIPHERML_E_SERVICE_CONFLICT', param: '--role' });
    expect(JSON.parse(clash.stdout).error.message).toContain('serve token role');
    expect((await cli('serve', 'token', 'role', '--data', data, '--user', 'ann', '--role', 'user')).code).toBe(0);

    const list = await cli('serve', 'token', 'list', '--data', data, '--json');
    const rows = JSON.parse(list.stdout) as { id: string; user: string; role: string; status: string }[];
    expect(rows).toHaveLength(2);
    expect(rows.every((r) => r.user === 'ann' && r.role === 'user' && r.status === 'active')).toBe(true);
    expect(list.stdout).not.toContain(first.token);
    expect(list.stdout).not.toContain(first.token.slice(4, 20));

    expect((await cli('serve', 'token', 'revoke', '--data', data, '--id', rows[0]!.id)).code).toBe(0);
    const gone = await cli('serve', 'token', 'revoke', '--data', data, '--id', rows[0]!.id, '--json');
    expect(JSON.parse(gone.stdout).error.code).toBe('CIPHERML_E_SERVICE_NOT_FOUND');
    const s = await openStorage({ dataDir: data });
    try {
      expect((await s.listTokens()).map((r) => r.status).sort()).toEqual(['active', 'revoked']);
      expect(await s.revokeTokens({ user: 'ann' })).toBe(1);
      expect(await s.authenticate(first.token)).toBeUndefined();
    } finally {
      await s.close();
    }
  });
});
