import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway, toFeatureLabelCsv } from '../../src/gateway/index.ts';
import { loadCsvDataset } from '../../src/ml/csv.ts';
import { trainPoly3LogReg } from '../../src/ml/poly-logreg.ts';
import { openStorage, startService } from '../../src/service/index.ts';

const root = mkdtempSync(join(tmpdir(), 'cipherml-svc-restart-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('service restart during a fit job', () => {
  it('resumes the interrupted job from its checkpoint and the gateway still gets the right model', async () => {
    const dataDir = join(root, 'data');
    const s = await openStorage({ dataDir });
    const owner = await s.createToken((await s.ensureUser('owner', 'owner')).id);
    const alice = await s.createToken((await s.ensureUser('alice', 'user')).id);
    await s.close();
    let svc = await startService({ dataDir, port: 0 });
    const port = Number(new URL(svc.url).port);
    const ds = await loadCsvDataset('examples/data/breast_homo_guest.csv');
    const F = ds.featureNames.length;
    await fetch(`${svc.url}/api/v1/bc/1/deploy_model`, { method: 'POST', headers: { authorization: `Bearer ${owner}` } });
    const gw = new Gateway({ service: svc.url, token: alice, model: 'bc/1', keyDir: join(root, 'keys') });
    const csv = toFeatureLabelCsv(ds);
    const fit = gw.fit({ model: { coef_: [Array<number>(F).fill(0)], intercept_: [0] }, hyper: { numberOfEpochs: 3, learningRate: 0.1, numberOfFeatures: F }, features: csv.features, labels: csv.labels });
    fit.catch(() => undefined);
    // Wait until the first epoch is checkpointed, then stop the service mid-job.
    for (;;) {
      const jobs = await svc.storage.listJobs({});
      if (jobs[0] !== undefined && typeof jobs[0].state['epoch'] === 'number') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await svc.close();
    const s2 = await openStorage({ dataDir });
    const [interrupted] = await s2.listJobs({});
    expect(['running', 'awaiting_refresh']).toContain(interrupted!.status);
    await s2.close();
    svc = await startService({ dataDir, port });
    try {
      const { trained, figures } = await fit;
      expect(figures.jobId).toBe(interrupted!.id);
      const plain = trainPoly3LogReg(ds.features, ds.labels, { coef: new Float64Array(F), intercept: 0 }, { epochs: 3, learningRate: 0.1 });
      trained.coef_[0]!.forEach((w, j) => expect(Math.abs(w - plain.coef[j]!)).toBeLessThan(1e-2));
      expect(Math.abs(trained.intercept_[0]! - plain.intercept)).toBeLessThan(1e-2);
    } finally {
      await svc.close();
    }
  });
});
