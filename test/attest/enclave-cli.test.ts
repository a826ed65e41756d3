import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, saveIdentity } from '../../src/core/identity.ts';
import { cli } from '../helpers.ts';

/** `cipherml enclave measure`, `enclave simulate-report` and `attest verify --kind simulation`, as separate processes on real files. */
describe('cipherml enclave', () => {
  let dir: string;
  const agg = generateIdentity('aggregator', 'agg-cli');
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-enclave-'));
    await mkdir(join(dir, 'bundle'));
    await writeFile(join(dir, 'bundle', 'server.js'), 'export {};\n');
    await writeFile(join(dir, 'security.toml'), 'min-fit = 2\nkey-bits = 3072\n');
    await saveIdentity(join(dir, 'agg.id'), agg);
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('measure: the same tree twice gives the same digest; a changed file another', async () => {
    const args = ['enclave', 'measure', '--bundle', join(dir, 'bundle'), '--config', join(dir, 'security.toml'), '--json'];
    const [a, b] = await Promise.all([cli(...args), cli(...args)]);
    expect(a.code).toBe(0);
    const ma = JSON.parse(a.stdout) as { measurement: string; files: number };
    expect(ma.files).toBe(1);
    expect(JSON.parse(b.stdout).measurement).toBe(ma.measurement);
    await writeFile(join(dir, 'bundle', 'server.js'), 'export const evil = 1;\n');
    const c = await cli(...args);
    expect(JSON.parse(c.stdout).measurement).not.toBe(ma.measurement);
  });

  it('a simulation report verifies only with allow-simulation and the pinned key, and every printed line says so', async () => {
    const measurement = 'ab'.repeat(48);
    const out = join(dir, 'sim.json');
    const w = await cli('enclave', 'simulate-report', '--identity', join(dir, 'agg.id'), '--measurement', measurement, '--report-data', 'cafe', '-o', out);
    expect(w.code).toBe(0);
    expect(w.stdout).toContain('simulation: no hardware isolation');
    await writeFile(join(dir, 'sim-policy.toml'), `kind = "simulation"\nallow-simulation = true\nsimulation-signers = ["${agg.fingerprint}"]\nmeasurement = "${measurement}"\nreport-data = "cafe"\n`);
    const [ok, strict] = await Promise.all([
      cli('attest', 'verify', out, '--kind', 'simulation', '--policy', join(dir, 'sim-policy.toml')),
      cli('attest', 'verify', out, '--kind', 'simulation', '--json'),
    ]);
    expect(ok.code).toBe(0);
    const lines = ok.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) expect(line).toContain('simulation: no hardware isolation');
    expect(strict.code).toBe(1);
    expect(JSON.parse(strict.stdout).error).toMatchObject({ code: 'CIPHERML_E_ATTESTATION_SIMULATION', param: 'allow-simulation' });
  });

  it('bad flags name the flag', async () => {
    const r = await cli('enclave', 'simulate-report', '--identity', join(dir, 'agg.id'), '--measurement', 'xyz', '--report-data', '00', '-o', join(dir, 'x.json'), '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error.param).toBe('--measurement');
  });
});
