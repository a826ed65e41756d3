import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadIdentity, loadRoster } from '../src/core/identity.ts';
import { cli } from './helpers.ts';

// `cipherml identity create|show|roster` as a user runs them (separate processes, real files).

describe('cipherml identity', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-identity-cli-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('creates an identity (0600 secret, .pub beside it), shows it, builds a roster, and refuses bad input with typed errors', async () => {
    const file = join(dir, 'w1.id');
    const created = await cli('identity', 'create', '--role', 'worker', '--id', 'hospital-a', '--out', file, '--json');
    expect(created.code).toBe(0);
    const info = JSON.parse(created.stdout) as { fingerprint: string; role: string; id: string };
    expect(info).toMatchObject({ role: 'worker', id: 'hospital-a' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await loadIdentity(file)).fingerprint).toBe(info.fingerprint);

    const shown = await cli('identity', 'show', `${file}.pub`, '--json');
    expect(JSON.parse(shown.stdout)).toEqual({ role: 'worker', id: 'hospital-a', fingerprint: info.fingerprint });

    const srv = join(dir, 'srv.id');
    expect((await cli('identity', 'create', '--role', 'server', '--id', 'ps', '--out', srv)).code).toBe(0);
    const roster = join(dir, 'roster.json');
    expect((await cli('identity', 'roster', '--out', roster, `${file}.pub`, `${srv}.pub`)).code).toBe(0);
    const r = await loadRoster(roster, 'roster');
    expect(r.require('worker', 'hospital-a', 'test').fingerprint).toBe(info.fingerprint);
    expect(await readFile(roster, 'utf8')).not.toContain('secretKey');

    const again = await cli('identity', 'create', '--role', 'worker', '--id', 'x', '--out', file, '--json');
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('CIPHERML_E_FILE_EXISTS');
    const role = await cli('identity', 'create', '--role', 'admin', '--id', 'x', '--out', join(dir, 'x.id'), '--json');
    expect(role.code).toBe(1);
    expect(role.stdout).toContain('--role');
  });
});
