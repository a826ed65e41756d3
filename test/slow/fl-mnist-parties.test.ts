import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateIdentity, saveIdentity } from '../../src/core/identity.ts';
import { cli as spawnCli, demoIdentities, freePort, waitForLine } from '../../src/demos/homo-lr.ts';
import { runFlMnistDemo } from '../../src/demos/fl-mnist.ts';
import { cli } from '../helpers.ts';

// `fl nn-server` / `fl nn-worker` identity mode and `demo fl-mnist` stopping on a failed worker,
// each party a separate Node process over gRPC on loopback.

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const SMALL = ['--model', 'mlp', '--partition', 'iid', '--num-clients', '2', '--train-limit', '64', '--test-limit', '32', '--seed', '3'];

describe('fl nn-server / nn-worker in identity mode (--identity, --roster)', () => {
  it('roster workers train; an impostor with an unpinned key for a roster id is refused and never counted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fl-nn-identity-'));
    dirs.push(dir);
    const ids = await demoIdentities(dir, [{ role: 'server', id: 'server' }, { role: 'worker', id: '1' }, { role: 'worker', id: '2' }]);
    // The adversary: a process that claims to be worker 2 but signs with a key the roster does not pin.
    const impostor = join(dir, 'impostor.id');
    await saveIdentity(impostor, generateIdentity('worker', '2'));
    const address = `127.0.0.1:${await freePort()}`;
    const lines: string[] = [];
    const events: Record<string, unknown>[] = [];
    let summary: Record<string, unknown> | null = null;
    const server = spawnCli(
      ['fl', 'nn-server', ...SMALL, '--address', address, '--identity', ids.files.get('server:server')!, '--roster', ids.roster, '--num-server-rounds', '1', '--min-available-clients', '1', '--min-fit-clients', '1', '--min-evaluate-clients', '0', '--fraction-evaluate', '0', '--join-timeout', '60', '--run-dir', join(dir, 'run'), '--json'],
      'server',
      (l) => lines.push(l),
      (o) => {
        events.push(o);
        if ('accuracy' in o && 'strategy' in o) summary = o;
      },
    );
    try {
      await waitForLine(() => events.some((e) => e['event'] === 'listening') || server.child.exitCode !== null, 'server', 120_000);
      expect(events.find((e) => e['event'] === 'identity')).toMatchObject({ role: 'server', id: 'server' });
      const bad = await cli('fl', 'nn-worker', ...SMALL, '--id', '2', '--server', address, '--identity', impostor, '--roster', ids.roster, '--json');
      expect(bad.code).not.toBe(0);
      expect(bad.stdout + bad.stderr).toContain('CIPHERML_E_SIGNATURE_INVALID');
      expect(events.filter((e) => e['event'] === 'joined')).toEqual([]);
      const good = await cli('fl', 'nn-worker', ...SMALL, '--id', '1', '--server', address, '--identity', ids.files.get('worker:1')!, '--roster', ids.roster, '--json');
      expect(good.code).toBe(0);
      expect(good.stdout).toContain('"event":"identity"');
      expect(await server.exit).toBe(0);
      expect(summary).toMatchObject({ rounds: 1 });
      expect(events.filter((e) => e['event'] === 'joined').map((e) => e['workerId'])).toEqual(['1']);
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGTERM');
      await server.exit;
    }
  }, 240_000);

  it('identity mode and --insecure-dev-tokens together are refused before any data is read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fl-nn-identity-'));
    dirs.push(dir);
    const ids = await demoIdentities(dir, [{ role: 'server', id: 'server' }, { role: 'worker', id: '1' }]);
    for (const args of [
      ['fl', 'nn-server', '--identity', ids.files.get('server:server')!, '--roster', ids.roster, '--insecure-dev-tokens', '--data-dir', join(dir, 'nowhere'), '--json'],
      ['fl', 'nn-worker', '--id', '1', '--identity', ids.files.get('worker:1')!, '--roster', ids.roster, '--insecure-dev-tokens', '--data-dir', join(dir, 'nowhere'), '--json'],
    ]) {
      const r = await cli(...args);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('CIPHERML_E_CONFIG_INVALID');
      expect(r.stdout).toContain('--insecure-dev-tokens');
    }
  }, 60_000);
});

/** A two-worker MLP run in which the workers `fails` picks get a data folder that does not exist. */
function failingRun(dir: string, fails: (id: string) => boolean): Promise<unknown> {
  return runFlMnistDemo({
    strategy: 'plain',
    clients: 2,
    partition: 'iid',
    dataset: 'mnist',
    rounds: 1,
    model: 'mlp',
    trainLimit: 64,
    testLimit: 32,
    runDir: join(dir, 'run'),
    workerArgs: (id) => (fails(id) ? ['--data-dir', join(dir, 'no-such-folder')] : []),
  }).catch((e: unknown) => e);
}

describe('demo fl-mnist when workers fail', () => {
  it('stops with CIPHERML_E_DEMO_PARTY_FAILED naming the worker and its exit code instead of waiting for the join timeout', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fl-mnist-fail-'));
    dirs.push(dir);
    const started = Date.now();
    const err = await failingRun(dir, (id) => id === '2');
    expect(err).toMatchObject({ code: 'CIPHERML_E_DEMO_PARTY_FAILED', param: 'worker 2', details: { failed: ['worker 2'], exitCodes: { 'worker 2': 1 } } });
    expect((err as Error).message).toContain('worker 2 (exit code 1)');
    // The server's join timeout is 600 s: the demo stopped on the worker's exit, not on that.
    expect(Date.now() - started).toBeLessThan(120_000);
  }, 180_000);

  it('names every worker that failed when all of them do', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fl-mnist-fail-'));
    dirs.push(dir);
    const err = await failingRun(dir, () => true);
    expect(err).toMatchObject({ code: 'CIPHERML_E_DEMO_PARTY_FAILED', details: { failed: ['worker 1', 'worker 2'] } });
    expect((err as Error).message).toMatch(/worker 1 \(exit code 1\), worker 2 \(exit code 1\)/);
  }, 180_000);
});
