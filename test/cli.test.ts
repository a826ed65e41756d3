import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers.ts';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';


describe('cipherml CLI, end to end in separate processes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-cli-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('prints its version and help', async () => {
    expect((await cli('--version')).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect((await cli('--help')).stdout).toContain('paillier');
  });

  it('runs the main demo with a JSON summary whose aggregate matches plaintext', async () => {
    const r = await cli('demo', 'paillier', '--key-bits', '1024', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { maxAbsError: number; accuracyEncrypted: number; accuracyPlaintext: number; parties: unknown[] };
    expect(out.parties).toHaveLength(2);
    expect(out.maxAbsError).toBeLessThan(1e-3);
    expect(out.accuracyEncrypted).toBe(out.accuracyPlaintext);
    expect(out.accuracyEncrypted).toBeGreaterThan(0.85);
    expect(r.stderr).toContain('[aggregate]');
  });

  it('keygen → encrypt ×2 → add (public key only) → decrypt gives the sum and the mean', async () => {
    const key = join(dir, 'key');
    expect((await cli('paillier', 'keygen', '-o', key, '--bits', '1024')).code).toBe(0);
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    await writeFile(join(dir, 'a.json'), JSON.stringify([1.5, -2, 1000]));
    await writeFile(join(dir, 'b.txt'), '0.25\n4\n-0.5\n');
    expect((await cli('paillier', 'encrypt', '-k', `${key}.pub`, '-i', join(dir, 'a.json'), '-o', join(dir, 'a.enc'))).code).toBe(0);
    expect((await cli('paillier', 'encrypt', '-k', `${key}.pub`, '-i', join(dir, 'b.txt'), '-o', join(dir, 'b.enc'))).code).toBe(0);
    const add = await cli('paillier', 'add', '-k', `${key}.pub`, '-i', join(dir, 'a.enc'), '-i', join(dir, 'b.enc'), '-o', join(dir, 'sum.enc'), '--json');
    expect(JSON.parse(add.stdout)).toMatchObject({ contributions: 2, length: 3 });
    const dec = await cli('paillier', 'decrypt', '-k', key, '-i', join(dir, 'sum.enc'), '--json');
    expect(JSON.parse(dec.stdout)).toEqual({ values: [1.75, 2, 999.5], contributions: 2 });
    const mean = await cli('paillier', 'decrypt', '-k', key, '-i', join(dir, 'sum.enc'), '--mean', '-o', join(dir, 'mean.json'));
    expect(mean.code).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'mean.json'), 'utf8'))).toEqual([0.875, 1, 499.75]);
  });

  it('reports bad input with its stable code and a non-zero exit, and keeps existing files', async () => {
    const key = join(dir, 'k2');
    await cli('paillier', 'keygen', '-o', key, '--bits', '1024');
    const before = await readFile(key);
    const again = await cli('paillier', 'keygen', '-o', key, '--bits', '1024', '--json');
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout).error.code).toBe('CIPHERML_E_FILE_EXISTS');
    expect(Buffer.compare(await readFile(key), before)).toBe(0);

    await writeFile(join(dir, 'nan.json'), '[1, "x"]');
    const bad = await cli('paillier', 'encrypt', '-k', `${key}.pub`, '-i', join(dir, 'nan.json'), '-o', join(dir, 'nan.enc'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('CIPHERML_E_INVALID_ARGUMENT');

    const other = join(dir, 'k3');
    await cli('paillier', 'keygen', '-o', other, '--bits', '1024');
    await writeFile(join(dir, 'one.json'), '[1]');
    await cli('paillier', 'encrypt', '-k', `${key}.pub`, '-i', join(dir, 'one.json'), '-o', join(dir, 'one.enc'));
    const wrongKey = await cli('paillier', 'decrypt', '-k', other, '-i', join(dir, 'one.enc'));
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('CIPHERML_E_KEY_MISMATCH');

    const usage = await cli('demo', 'paillier', '--key-bits', 'many');
    expect(usage.code).toBe(2);
  });

  it('fl nn-server fills the run-dir placeholders once: app.json lands in the run\'s folder', async () => {
    // Before, app.json went to a literal "{time}-{strategy}" folder beside the run's own.
    const runs = join(dir, 'nn-runs');
    const r = await cli('fl', 'nn-server', '--model', 'mlp', '--num-clients', '2', '--train-limit', '64', '--test-limit', '32', '--join-timeout', '1', '--insecure-dev-tokens', '--address', '127.0.0.1:1', '--run-dir', join(runs, '{time}-{strategy}'), '--json');
    expect(r.stdout).toContain('CIPHERML_E_'); // no worker joins: the server stops after the join timeout (or on the busy port)
    const folders = await readdir(runs);
    expect(folders).toHaveLength(1);
    expect(folders[0]).toMatch(/^\d{8}-\d{6}-[0-9a-f]{4}-plain$/);
    expect(JSON.parse(await readFile(join(runs, folders[0]!, 'app.json'), 'utf8'))).toMatchObject({ model: 'mlp', numClients: 2 });
  }, 60_000);
});
