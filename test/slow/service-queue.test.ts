import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway, toFeatureLabelCsv } from '../../src/gateway/index.ts';
import { loadCsvDataset } from '../../src/ml/csv.ts';
import { trainPoly3LogReg } from '../../src/ml/poly-logreg.ts';
import { openStorage, startQueueWorker, startService } from '../../src/service/index.ts';

const redis = process.env['CIPHERML_TEST_REDIS_URL'];
const pg = process.env['CIPHERML_TEST_POSTGRES_URL'];
if (redis === undefined || redis === '') console.warn('service queue test: CIPHERML_TEST_REDIS_URL is not set, BullMQ test SKIPPED');
const root = mkdtempSync(join(tmpdir(), 'cipherml-svc-queue-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.skipIf(redis === undefined || redis === '')('fit jobs through BullMQ and a separate worker', () => {
  it(`trains through the queue (${pg === undefined || pg === '' ? 'SQLite' : 'PostgreSQL'} storage) like the in-process path`, async () => {
    const ref = { dataDir: join(root, 'data'), db: pg };
    const s = await openStorage(ref);
    const tag = Math.random().toString(36).slice(2, 8);
    const owner = await s.createToken((await s.ensureUser(`qowner-${tag}`, 'owner')).id);
    const alice = await s.createToken((await s.ensureUser(`qalice-${tag}`, 'user')).id);
    await s.close();
    const svc = await startService({ ...ref, port: 0, redis });
    const worker = await startQueueWorker(ref, redis!);
    try {
      await fetch(`${svc.url}/api/v1/q${tag}/1/deploy_model`, { method: 'POST', headers: { authorization: `Bearer ${owner}` } });
      const ds = await loadCsvDataset('examples/data/breast_homo_test.csv');
      const F = ds.featureNames.length;
      const csv = toFeatureLabelCsv(ds);
      const gw = new Gateway({ service: svc.url, token: alice, model: `q${tag}/1`, keyDir: join(root, 'keys') });
      const { trained, figures } = await gw.fit({ model: { coef_: [Array<number>(F).fill(0)], intercept_: [0] }, hyper: { numberOfEpochs: 2, learningRate: 0.1, numberOfFeatures: F }, features: csv.features, labels: csv.labels });
      expect(figures.refreshes).toBe(1);
      const plain = trainPoly3LogReg(ds.features, ds.labels, { coef: new Float64Array(F), intercept: 0 }, { epochs: 2, learningRate: 0.1 });
      trained.coef_[0]!.forEach((w, j) => expect(Math.abs(w - plain.coef[j]!)).toBeLessThan(1e-2));
    } finally {
      await worker.close();
      await svc.close();
    }
  });
});
