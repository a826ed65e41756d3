import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers.ts';

/** `cipherml server --tee …` and `worker --require-attestation` refusals, as separate processes. */
describe('cipherml server --tee', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-enclave-cli-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('hardware kinds are refused with a typed error naming --tee (no TEE device here); simulation needs identity mode', async () => {
    for (const kind of ['sgx', 'tdx', 'sev-snp', 'nitro']) {
      const r = await cli('server', '--tee', kind, '--strategy', 'paillier', '--run-dir', join(dir, kind), '--address', '127.0.0.1:19997');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('CIPHERML_E_TEE_UNAVAILABLE');
      expect(r.stderr).toContain(`--tee ${kind}`);
    }
    const sim = await cli('server', '--tee', 'simulation', '--strategy', 'paillier', '--insecure-dev-tokens', '--run-dir', join(dir, 'sim'), '--address', '127.0.0.1:19997');
    expect(sim.code).not.toBe(0);
    expect(sim.stderr).toContain('CIPHERML_E_CONFIG_INVALID');
    expect(sim.stderr).toContain('--tee needs identity mode');
  });

  it('a worker with --require-attestation refuses a server that is not an attested aggregator', async () => {
    const r = await cli('worker', '--server', '127.0.0.1:9', '--train-set', join(import.meta.dirname, '..', '..', 'examples', 'data', 'breast_homo_guest.csv'), '--id', '1', '--insecure-dev-tokens', '--require-attestation', join(dir, 'missing-policy.toml'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CIPHERML_E_IO|CIPHERML_E_CONFIG_INVALID/);
  });

  it('demo homo-lr --strategy enclave refuses the demo CA flags before making any file', async () => {
    for (const flag of ['--tls', '--no-tls']) {
      const r = await cli('demo', 'homo-lr', '--strategy', 'enclave', flag, '--run-dir', join(dir, `demo${flag}`));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('CIPHERML_E_INVALID_ARGUMENT');
      expect(r.stderr).toContain('--tls');
      await expect(rm(join(dir, `demo${flag}`))).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });
});
