import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `cipherml demo homo-lr --key-holder threshold`: a one-shot dealer process, three key-holder
// processes, a server and two workers, all separate processes over loopback gRPC; the model must
// match plain FedAvg's accuracy within 0.01.

const bin = join(import.meta.dirname, '..', '..', 'bin', 'cipherml.js');

function demo(args: string[]): Promise<{ code: number | null; last: Record<string, unknown>; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'demo', 'homo-lr', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => resolve({ code, last: JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>, stderr: err }));
  });
}

describe('demo homo-lr --key-holder threshold', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-threshold-demo-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('runs end to end with 2-of-3 key holders, accuracy within 0.01 of plain FedAvg', async () => {
    const plain = await demo(['--strategy', 'plain', '--rounds', '10', '--run-dir', join(dir, 'plain')]);
    const th = await demo(['--key-holder', 'threshold', '--threshold', '2-of-3', '--key-bits', '1024', '--rounds', '10', '--run-dir', join(dir, 'threshold')]);
    expect(plain.code).toBe(0);
    expect(th.code, th.stderr.slice(-2000)).toBe(0);
    expect(th.last).toMatchObject({ strategy: 'paillier', keyHolder: 'threshold', rounds: 10 });
    expect(Math.abs((th.last['accuracy'] as number) - (plain.last['accuracy'] as number))).toBeLessThanOrEqual(0.01);
    expect(th.stderr).toMatch(/\[holder 2\] decrypted round 10: decryption shares of the product of 2 signed contributions/);
    const history = JSON.parse(await readFile(join(dir, 'threshold', 'history.json'), 'utf8')) as { rounds: { secagg?: { threshold?: { used: number[]; rejected: number[] } } }[] };
    // The server records each round's stage report under `secagg`.
    expect(history.rounds[9]!.secagg?.threshold).toMatchObject({ rejected: [] });
  });
});
