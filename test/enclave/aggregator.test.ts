import { describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isCipherMLError } from '../../src/core/errors.ts';
import { bindingDigest, verifySimulationReport } from '../../src/attest/index.ts';
import { assertTeeAvailable } from '../../src/enclave/aggregator.ts';
import { OTHER_MEASUREMENT, attestedWorker, makeEnclaveParties, policyFor, startAggregator, tempDir } from './harness.ts';

// The aggregator's lifecycle: secrets generated at start and only ever written sealed; a restart
// with the same build resumes from the sealed checkpoint (same keys, run id and next round);
// another build cannot open it; hardware kinds are refused here with a typed error.

describe('enclave aggregator', () => {
  it('restart resumes from the sealed checkpoint with the same keys and run; another measurement cannot open it', async () => {
    const p = makeEnclaveParties();
    const dir = await tempDir('restart');
    const first = await startAggregator(p, dir, { rounds: 1 });
    const run1 = first.run();
    await Promise.all([0, 1].map((i) => attestedWorker(p, i, first.address, policyFor(p), first.runId)));
    expect((await run1).rounds).toBe(1);
    const bound = first.boundKeys;
    await first.close();
    // Neither key appears unsealed on disk.
    const files = await readdir(dir);
    const disk = Buffer.concat(await Promise.all(files.map((f) => readFile(join(dir, f)))));
    expect(disk.includes(Buffer.from(first.runId))).toBe(true); // history.json names the run
    expect(disk.includes(Buffer.from('PRIVATE KEY'))).toBe(false);
    expect(files).not.toContain('checkpoint.json');

    const other = await startAggregator(p, dir, { measurement: OTHER_MEASUREMENT }).catch((e: unknown) => e);
    expect(isCipherMLError(other, 'CIPHERML_E_SEALED_DATA')).toBe(true);

    const events: string[] = [];
    const second = await startAggregator(p, dir, { rounds: 2 });
    expect(second.runId).toBe(first.runId);
    expect(Buffer.from(second.boundKeys.paillierPublicKey).equals(Buffer.from(bound.paillierPublicKey))).toBe(true);
    expect(Buffer.from(second.boundKeys.tlsPublicKey).equals(Buffer.from(bound.tlsPublicKey))).toBe(true);
    const run2 = second.run();
    const workers = await Promise.all([0, 1].map((i) => attestedWorker(p, i, second.address, policyFor(p), first.runId)));
    const summary = await run2;
    await second.close();
    events.push(...summary.history.map((r) => `round ${r.round}`));
    expect(events).toEqual(['round 1', 'round 2']);
    expect(workers.map((w) => w.rounds)).toEqual([1, 1]); // only round 2 ran after the restart
    // The republished document binds the same keys and run.
    const r = verifySimulationReport(Buffer.from(second.attestation.document, 'base64'), policyFor(p));
    expect(r.reportData.slice(0, 64)).toBe(Buffer.from(bindingDigest({ ...bound, runId: first.runId })).toString('hex'));
  });

  it('hardware kinds are refused with CIPHERML_E_TEE_UNAVAILABLE naming --tee; unknown kinds are an invalid argument', () => {
    for (const kind of ['sgx', 'tdx', 'sev-snp', 'nitro']) {
      const e = (() => {
        try {
          assertTeeAvailable(kind);
          return null;
        } catch (err) {
          return err;
        }
      })();
      expect(isCipherMLError(e, 'CIPHERML_E_TEE_UNAVAILABLE')).toBe(true);
      expect((e as { param: string }).param).toBe('--tee');
    }
    expect(() => assertTeeAvailable('simulation')).not.toThrow();
    expect(() => assertTeeAvailable('tpm')).toThrow(/--tee must be one of/);
  });
});
