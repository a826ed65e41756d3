import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../src/gateway/index.ts';
import { openStorage, startService } from '../../src/service/index.ts';
import { codeOfAsync } from '../helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'cipherml-gw-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The issue-17 case end to end with the gateway's own keys and record: `gateway fit` dies while
// its job waits for a refresh; the next `gateway fit` resumes that job with the same key (before:
// it made new keys, replaced the uploads, got 409, and the old job could never finish). Then the
// sealed key (format 2, bound to user, model and fingerprint) restores on another key store.
describe('gateway fit resumes its open job', () => {
  it('a fit interrupted while awaiting a refresh is resumed by the next fit with the same key and finishes; the sealed key restores elsewhere', { timeout: 600_000 }, async () => {
    const dataDir = join(root, 'data');
    const s = await openStorage({ dataDir });
    const owner = await s.createToken((await s.ensureUser('owner', 'owner')).id);
    const alice = await s.createToken((await s.ensureUser('alice', 'user')).id);
    await s.close();
    const svc = await startService({ dataDir, port: 0, console: false });
    try {
      await fetch(`${svc.url}/api/v1/m/1/deploy_model`, { method: 'POST', headers: { authorization: `Bearer ${owner}` } });
      const input = { model: { coef_: [[0, 0]], intercept_: [0] }, hyper: { numberOfEpochs: 3, learningRate: 0.5, numberOfFeatures: 2 }, features: 'a,b\n1,0\n0,1\n1,1\n0,0\n', labels: 'y\n1\n0\n1\n0\n' };
      const keyDir = join(root, 'keys');
      const crash = new Gateway({ service: svc.url, token: alice, model: 'm/1', keyDir, passphrase: 'alice passphrase', onProgress: (l) => {
        if (l.includes('awaiting_refresh')) throw new Error('gateway killed');
      } });
      await expect(crash.fit(input)).rejects.toThrow('gateway killed');
      const key = readFileSync(join(keyDir, 'm@1', 'ckks'));
      const record = JSON.parse(readFileSync(join(keyDir, 'm@1', 'ckks.job.json'), 'utf8')) as { jobId: string };
      const lines: string[] = [];
      const again = new Gateway({ service: svc.url, token: alice, model: 'm/1', keyDir, onProgress: (l) => lines.push(l) });
      const { figures } = await again.fit(input);
      expect(lines[0]).toContain(`resuming job ${record.jobId}`);
      expect(figures).toMatchObject({ jobId: record.jobId, refreshes: 2, epochs: 3 });
      expect(readFileSync(join(keyDir, 'm@1', 'ckks')).equals(key)).toBe(true);

      const elsewhere = new Gateway({ service: svc.url, token: alice, model: 'm/1', keyDir: join(root, 'other') });
      expect(await codeOfAsync(() => elsewhere.restoreKeys('wrong passphrase'))).toBe('CIPHERML_E_FORMAT_CORRUPT');
      const restored = await elsewhere.restoreKeys('alice passphrase');
      expect(readFileSync(join(root, 'other', 'm@1', 'ckks')).equals(key)).toBe(true);
      expect(restored.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await svc.close();
    }
  });
});
