import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers.ts';
import { FIXTURES } from './vectors.ts';

/** `cipherml attest verify` as a user runs it: separate processes, real files, exit codes. */
describe('cipherml attest verify', () => {
  let dir: string;
  const f = (p: string): string => join(FIXTURES, p);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-attest-'));
    await writeFile(join(dir, 'snp.toml'), 'kind = "sev-snp"\nmeasurement = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"\nproduct = "Milan"\nallow-debug = true\nreport-data = "0102030405"\n[min-tcb]\nbootloader = 2\nsnp = 5\nmicrocode = 68\n');
    await writeFile(join(dir, 'snp-other.toml'), 'kind = "sev-snp"\nmeasurement = "' + '11'.repeat(48) + '"\nallow-debug = true\n');
    await writeFile(join(dir, 'typo.json'), JSON.stringify({ 'allow-debugg': true }));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('verifies a TDX quote with collateral at its time: exit 0, fields and verdict', async () => {
    const [json, text] = await Promise.all([
      cli('attest', 'verify', f('tdx/dcap-qvl/tdx_quote'), '--kind', 'tdx', '--at', '2025-07-19T10:00:34Z', '--collateral', f('tdx/dcap-qvl/tdx_quote_collateral.json'), '--json'),
      cli('attest', 'verify', f('tdx/dcap-qvl/tdx_quote'), '--kind', 'tdx', '--at', '2025-07-19T10:00:34Z', '--collateral', f('tdx/dcap-qvl/tdx_quote_collateral.json')),
    ]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ verdict: 'verified', kind: 'tdx', tcbStatus: 'UpToDate', debug: false, measurement: '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7' });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/verdict: +VERIFIED under the default policy at 2025-07-19T10:00:34.000Z/);
    expect(text.stdout).toContain('TCB status:        UpToDate');
  });

  it('applies a TOML policy; a policy expecting another measurement exits 1 naming the check', async () => {
    const snp = [f('sev-snp/go-sev-guest/attestation.bin'), '--kind', 'sev-snp', '--vek', f('sev-snp/go-sev-guest/vcek.testcer'), '--at', '2022-09-24T01:00:00Z', '--json'];
    const [ok, other, strict] = await Promise.all([
      cli('attest', 'verify', ...snp, '--policy', join(dir, 'snp.toml')),
      cli('attest', 'verify', ...snp, '--policy', join(dir, 'snp-other.toml')),
      cli('attest', 'verify', ...snp),
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ verdict: 'verified', debug: true, checks: expect.arrayContaining(['min-tcb', 'report-data', 'measurement']) });
    expect(other.code).toBe(1);
    expect(JSON.parse(other.stdout).error).toMatchObject({ code: 'CIPHERML_E_ATTESTATION_POLICY', param: 'measurement', details: { check: 'measurement' } });
    expect(strict.code).toBe(1);
    expect(JSON.parse(strict.stdout).error).toMatchObject({ code: 'CIPHERML_E_ATTESTATION_DEBUG', param: 'allow-debug' });
  });

  it('at the real current time an expired Nitro chain is refused (exit 1)', async () => {
    const r = await cli('attest', 'verify', f('nitro/blindai/nitro_attestation_document_valid.cbor'), '--kind', 'nitro');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CIPHERML_E_ATTESTATION_EXPIRED');
    expect(r.stderr).toContain('check certificate-validity failed');
  });

  it('bad flags are typed errors naming the flag', async () => {
    const nitro = f('nitro/evervault/beta-valid-attestation-doc-bytes.cbor');
    const [kind, at, vek, typo, missing] = await Promise.all([
      cli('attest', 'verify', nitro, '--kind', 'sgx', '--json'),
      cli('attest', 'verify', nitro, '--kind', 'nitro', '--at', 'yesterday', '--json'),
      cli('attest', 'verify', nitro, '--kind', 'nitro', '--vek', nitro, '--json'),
      cli('attest', 'verify', nitro, '--kind', 'nitro', '--policy', join(dir, 'typo.json'), '--json'),
      cli('attest', 'verify', join(dir, 'absent.bin'), '--kind', 'nitro', '--json'),
    ]);
    expect(JSON.parse(kind.stdout).error.param).toBe('--kind');
    expect(JSON.parse(at.stdout).error.param).toBe('--at');
    expect(JSON.parse(vek.stdout).error.param).toBe('--vek');
    expect(JSON.parse(typo.stdout).error).toMatchObject({ code: 'CIPHERML_E_CONFIG_INVALID', param: 'allow-debugg' });
    expect(JSON.parse(missing.stdout).error).toMatchObject({ code: 'CIPHERML_E_IO', param: 'FILE' });
    for (const r of [kind, at, vek, typo, missing]) expect(r.code).toBe(1);
  });
});
