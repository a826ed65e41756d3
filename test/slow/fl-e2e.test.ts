import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

// End to end over real loopback gRPC: every party is its own `cipherml` process.

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'cipherml.js');
const data = (f: string) => join(root, 'examples', 'data', f);

interface Proc {
  child: ChildProcess;
  json: Record<string, unknown>[];
  stderr: string[];
  exit: Promise<number | null>;
  waitFor(pred: (o: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

const procs: Proc[] = [];

function start(args: string[]): Proc {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const json: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const listeners = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      json.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      stderr.push(l);
    }
    for (const f of listeners) f();
  });
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const p: Proc = {
    child,
    json,
    stderr,
    exit,
    waitFor: (pred, timeoutMs = 90_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const hit = json.find(pred);
          if (hit !== undefined) {
            listeners.delete(check);
            clearTimeout(t);
            resolve(hit);
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting; stderr:\n${stderr.slice(-20).join('\n')}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      }),
  };
  procs.push(p);
  return p;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function lastJson(p: Proc): Record<string, unknown> {
  return p.json.at(-1)!;
}

describe('federated runtime, separate processes over loopback gRPC', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-e2e-'));
  });
  afterEach(() => {
    for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('demo homo-lr: plain and Paillier FedAvg agree within 0.01 on the test set, with a JSON summary last', async () => {
    const runs = [];
    for (const strategy of ['plain', 'paillier']) {
      const p = start(['demo', 'homo-lr', '--strategy', strategy, '--key-bits', '1024', '--rounds', '10', '--run-dir', join(dir, `demo-${strategy}`), '--json']);
      expect(await p.exit).toBe(0);
      runs.push(lastJson(p));
    }
    const [plain, paillier] = runs as [Record<string, number | string>, Record<string, number | string>];
    expect(paillier).toMatchObject({ strategy: 'paillier', keyHolder: 'server', rounds: 10 });
    expect(Math.abs((plain['accuracy'] as number) - (paillier['accuracy'] as number))).toBeLessThanOrEqual(0.01);
    expect(paillier['accuracy']).toBeGreaterThanOrEqual(0.93);
    expect(typeof paillier['loss']).toBe('number');
    const history = JSON.parse(await readFile(join(dir, 'demo-paillier', 'history.json'), 'utf8')) as { rounds: unknown[] };
    expect(history.rounds).toHaveLength(10);
    expect(await readFile(join(dir, 'demo-paillier', 'history.svg'), 'utf8')).toMatch(/^<svg/);
  });

  it('demo homo-lr --strategy secagg --workers 5 --drop 1: the same accuracy as plain FedAvg with the same dropout, within 0.01', async () => {
    const runs = [];
    for (const strategy of ['plain', 'secagg']) {
      const p = start(['demo', 'homo-lr', '--strategy', strategy, '--workers', '5', '--drop', '1', '--rounds', '10', '--run-dir', join(dir, `drop-${strategy}`), '--json']);
      expect(await p.exit).toBe(0);
      runs.push(lastJson(p));
    }
    const [plain, secure] = runs as [Record<string, unknown>, Record<string, unknown>];
    expect(secure).toMatchObject({ strategy: 'secagg', keyHolder: 'none', rounds: 10, workers: 5, dropped: ['5'] });
    expect(Math.abs((plain['accuracy'] as number) - (secure['accuracy'] as number))).toBeLessThanOrEqual(0.01);
    expect(secure['accuracy']).toBeGreaterThanOrEqual(0.93);
    const history = JSON.parse(await readFile(join(dir, 'drop-secagg', 'history.json'), 'utf8')) as { rounds: { round: number; secagg: { survivors: number; dropped: string[] } }[] };
    expect(history.rounds[0]!.secagg).toMatchObject({ survivors: 5, dropped: [] });
    expect(history.rounds[1]!.secagg).toMatchObject({ survivors: 4, dropped: ['5'] });
    expect(history.rounds[2]!.secagg).toMatchObject({ survivors: 4, dropped: [] });
  }, 180_000);

  it('a worker killed mid-round: the round completes with the remaining minimum and training finishes', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const server = start([
      'server', '--address', address, '--strategy', 'paillier', '--key-bits', '1024', '--num-server-rounds', '4',
      '--min-available-clients', '3', '--min-fit-clients', '2', '--min-evaluate-clients', '2', '--fraction-evaluate', '0',
      '--validate-set', data('breast_homo_test.csv'), '--run-dir', join(dir, 'kill-worker'), '--token', 'e2e-secret', '--json',
    ]);
    await server.waitFor((o) => o['type'] === 'listening');
    const files = ['breast_homo_guest.csv', 'breast_homo_host.csv', 'breast_homo_guest.csv'];
    const workers = files.map((f, i) => start(['worker', '--server', address, '--train-set', data(f), '--id', `w${i + 1}`, '--secret', 'e2e-secret', '--insecure-min-key-bits', '1024', '--json']));
    await server.waitFor((o) => o['type'] === 'round-start' && o['round'] === 2);
    workers[2]!.child.kill('SIGKILL');
    const summary = await server.waitFor((o) => 'accuracy' in o && 'strategy' in o, 120_000);
    expect(summary['rounds']).toBe(4);
    expect(server.json.some((o) => o['type'] === 'dropped' && o['workerId'] === 'w3')).toBe(true);
    const round2 = server.json.find((o) => o['type'] === 'round-end' && (o['record'] as { round: number }).round === 2)!['record'] as { fitResults: number; fitFailures: number };
    expect(round2.fitResults).toBeGreaterThanOrEqual(2);
    expect(await server.exit).toBe(0);
  });

  it('a server restarted mid-training resumes at the next round from its checkpoint; workers reconnect', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const args = [
      'server', '--address', address, '--strategy', 'paillier', '--key-bits', '1024', '--num-server-rounds', '6', '--workers', '2',
      '--validate-set', data('breast_homo_test.csv'), '--run-dir', join(dir, 'restart'), '--token', 'e2e-secret', '--json',
    ];
    const first = start(args);
    await first.waitFor((o) => o['type'] === 'listening');
    const workers = ['breast_homo_guest.csv', 'breast_homo_host.csv'].map((f, i) => start(['worker', '--server', address, '--train-set', data(f), '--id', `w${i + 1}`, '--secret', 'e2e-secret', '--insecure-min-key-bits', '1024', '--json']));
    await first.waitFor((o) => o['type'] === 'round-end' && (o['record'] as { round: number }).round === 3);
    first.child.kill('SIGKILL');
    await first.exit;
    const second = start(args);
    const resumed = await second.waitFor((o) => o['type'] === 'resumed');
    expect(resumed['round']).toBeGreaterThanOrEqual(3);
    const summary = await second.waitFor((o) => 'accuracy' in o && 'strategy' in o, 120_000);
    expect(summary['rounds']).toBe(6);
    expect(summary['accuracy']).toBeGreaterThanOrEqual(0.93);
    const rounds = second.json.filter((o) => o['type'] === 'round-start').map((o) => o['round'] as number);
    expect(Math.min(...rounds)).toBe((resumed['round'] as number) + 1);
    for (const w of workers) expect(await w.exit).toBe(0);
  });

  it('bad input on the command line and from peers gives typed errors', async () => {
    const bad = start(['server', '--num-server-rounds', 'ten', '--json']);
    expect(await bad.exit).toBe(1);
    expect(JSON.stringify(bad.json)).toContain('CIPHERML_E_CONFIG_INVALID');
    const unknown = start(['server', '--config', join(dir, 'missing.toml')]);
    expect(await unknown.exit).toBe(1);
    expect(unknown.stderr.join('\n')).toContain('CIPHERML_E_IO');

    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const server = start(['server', '--address', address, '--num-server-rounds', '1', '--workers', '1', '--token', 'e2e-secret', '--run-dir', join(dir, 'bad-peers'), '--json']);
    await server.waitFor((o) => o['type'] === 'listening');
    // Without identities the server runs the insecure development mode and says so at start.
    expect(server.json.some((o) => o['event'] === 'warning' && o['warning'] === 'insecure-dev-tokens')).toBe(true);
    const intruder = start(['worker', '--server', address, '--train-set', data('breast_homo_guest.csv'), '--id', 'w1', '--token', 'not-the-token']);
    expect(await intruder.exit).toBe(1);
    expect(intruder.stderr.join('\n')).toContain('CIPHERML_E_UNAUTHENTICATED');
    const good = start(['worker', '--server', address, '--train-set', data('breast_homo_guest.csv'), '--id', 'w1', '--secret', 'e2e-secret']);
    expect(await good.exit).toBe(0);
    expect(await server.exit).toBe(0);
  });
});
