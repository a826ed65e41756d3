import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { homoLrDemo } from './homo-lr-demo.ts';

// `cipherml demo homo-lr --strategy enclave`: the attested aggregator (simulation mode) and two
// workers with --require-attestation, separate processes over TLS on loopback; accuracy ≥ 0.95 and
// within 0.01 of plain FedAvg; the attestation check and the simulation label are in the output.


const demo = homoLrDemo;

describe('demo homo-lr --strategy enclave', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-enclave-demo-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('runs end to end in simulation mode with accuracy like plain FedAvg, every aggregator line labelled', async () => {
    const plain = await demo(['--strategy', 'plain', '--rounds', '10', '--run-dir', join(dir, 'plain')]);
    const enc = await demo(['--strategy', 'enclave', '--key-bits', '1024', '--rounds', '10', '--run-dir', join(dir, 'enclave')]);
    expect(plain.code).toBe(0);
    expect(enc.code, enc.stderr.slice(-2000)).toBe(0);
    expect(enc.last).toMatchObject({ strategy: 'paillier', keyHolder: 'enclave (simulation: no hardware isolation)', rounds: 10, isolation: 'simulation: no hardware isolation' });
    expect(enc.last['accuracy'] as number).toBeGreaterThanOrEqual(0.95);
    expect(Math.abs((enc.last['accuracy'] as number) - (plain.last['accuracy'] as number))).toBeLessThanOrEqual(0.01);
    expect(enc.stderr.match(/attestation verified: simulation document/g)?.length).toBe(2);
    for (const line of enc.stderr.split('\n').filter((l) => l.startsWith('[aggregator'))) expect(line).toContain('simulation: no hardware isolation');
    const files = await readdir(join(dir, 'enclave'));
    expect(files).toContain('enclave.sealed');
    expect(files).not.toContain('checkpoint.json');
    expect(await readFile(join(dir, 'enclave', 'history.svg'), 'utf8')).toContain('simulation: no hardware isolation');
  });
});
