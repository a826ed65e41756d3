import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// `cipherml demo service` as a user runs it: one command, bundled data, an embedded service.
const bin = join(import.meta.dirname, '..', '..', 'bin', 'cipherml.js');

describe('demo service', () => {
  it('trains on ciphertexts through the embedded service and matches the plaintext training', () => {
    const r = spawnSync(process.execPath, [bin, 'demo', 'service', '--json'], { encoding: 'utf8', timeout: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { rows: number; features: number; testRows: number; accuracy: number; plaintextAccuracy: number; maxWeightError: number; figures: { epochs: number; refreshes: number } };
    expect(summary).toMatchObject({ rows: 455, features: 30, testRows: 114, figures: { epochs: 3, refreshes: 2 } });
    expect(summary.maxWeightError).toBeLessThan(1e-2);
    expect(Math.abs(summary.accuracy - summary.plaintextAccuracy)).toBeLessThanOrEqual(0.01);
    expect(summary.accuracy).toBeGreaterThan(0.9);
    expect(r.stderr).toContain('[service] listening on http://127.0.0.1:');
  }, 200_000);
});
