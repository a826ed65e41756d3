import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway, toFeatureLabelCsv } from '../../src/gateway/index.ts';
import { loadCsvDataset } from '../../src/ml/csv.ts';
import { trainPoly3LogReg } from '../../src/ml/poly-logreg.ts';
import { openStorage, startService } from '../../src/service/index.ts';

const root = mkdtempSync(join(tmpdir(), 'cipherml-svc-e2e-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function tokens(dataDir: string): Promise<{ owner: string; alice: string; bob: string }> {
  const s = await openStorage({ dataDir });
  try {
    const make = async (name: string, role: 'owner' | 'user'): Promise<string> => s.createToken((await s.ensureUser(name, role)).id);
    return { owner: await make('owner', 'owner'), alice: await make('alice', 'user'), bob: await make('bob', 'user') };
  } finally {
    await s.close();
  }
}

describe('service + gateway end to end (SQLite)', () => {
  it('fits and predicts on encrypted breast cancer data, matches plaintext, isolates users, survives a restart, never stores the secret key', { timeout: 300_000 }, async () => {
    const dataDir = join(root, 'data');
    const keyDir = join(root, 'keys');
    const t = await tokens(dataDir);
    let svc = await startService({ dataDir, port: 0, maxBodyBytes: 64 * 1024 * 1024 });
    try {
      const anon = await fetch(`${svc.url}/api/v1/models`);
      expect(anon.status).toBe(401);
      expect(((await anon.json()) as { error: { code: string } }).error.code).toBe('CIPHERML_E_SERVICE_UNAUTHENTICATED');
      expect(await (await fetch(`${svc.url}/api/v1/info/version`)).json()).toMatchObject({ scheme: 'CKKS', storage: 'sqlite' });
      const info = await (await fetch(`${svc.url}/api/v1/info/version`, { headers: { authorization: `Bearer ${t.alice}` } })).json();
      expect(info).toMatchObject({ scheme: 'CKKS', storage: 'sqlite' });
      const spec = (await (await fetch(`${svc.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(spec.paths)).toContain('/api/v1/{model}/{version}/fit');
      expect(await (await fetch(`${svc.url}/docs`)).text()).toContain('swagger-ui-bundle.js');
      expect(await (await fetch(`${svc.url}/docs/json`)).text()).toContain('deploy_model');

      const asUser = await fetch(`${svc.url}/api/v1/bc/1/deploy_model`, { method: 'POST', headers: { authorization: `Bearer ${t.alice}` } });
      expect(asUser.status).toBe(403);
      const dep = await (await fetch(`${svc.url}/api/v1/bc/1/deploy_model`, { method: 'POST', headers: { authorization: `Bearer ${t.owner}` } })).json();
      expect(dep).toEqual({ modelUrl: '/api/v1/bc/1' });

      const a = await loadCsvDataset('examples/data/breast_homo_guest.csv');
      const b = await loadCsvDataset('examples/data/breast_homo_host.csv');
      const train = { featureNames: a.featureNames, features: [...a.features, ...b.features], labels: Float64Array.from([...a.labels, ...b.labels]) };
      const csv = toFeatureLabelCsv(train);
      const F = a.featureNames.length;
      const model = { coef_: [Array<number>(F).fill(0)], intercept_: [0] };
      const hyper = { numberOfEpochs: 3, learningRate: 0.1, numberOfFeatures: F, logisticRegressionActivation: 'sigmoid_poly_3_approximation' };
      const gw = new Gateway({ service: svc.url, token: t.alice, model: 'bc/1', keyDir, passphrase: 'alice passphrase' });
      const { trained, figures } = await gw.fit({ model, requirements: { batchSize: 512 }, hyper, features: csv.features, labels: csv.labels });
      expect(figures).toMatchObject({ epochs: 3, refreshes: 2, rows: train.features.length, features: F });
      expect(trained.coef_[0]!.length).toBe(F);
      const plain = trainPoly3LogReg(train.features, train.labels, { coef: new Float64Array(F), intercept: 0 }, { epochs: 3, learningRate: 0.1 });
      trained.coef_[0]!.forEach((w, j) => expect(Math.abs(w - plain.coef[j]!)).toBeLessThan(1e-2));
      expect(Math.abs(trained.intercept_[0]! - plain.intercept)).toBeLessThan(1e-2);
      expect(statSync(join(keyDir, 'bc@1', 'ckks')).mode & 0o777).toBe(0o600);

      const test = await loadCsvDataset('examples/data/breast_homo_test.csv');
      const p = await gw.predict(toFeatureLabelCsv(test).features);
      let agree = 0;
      let correct = 0;
      test.features.forEach((x, i) => {
        const z = x.reduce((s, v, j) => s + v * plain.coef[j]!, plain.intercept);
        if ((z > 0) === (p[i]! > 0.5)) agree++;
        if ((p[i]! > 0.5 ? 1 : 0) === test.labels[i]) correct++;
      });
      expect(agree).toBe(test.features.length);
      expect(correct / test.features.length).toBeGreaterThan(0.85);

      // Bob cannot reach Alice's model data: not registered → 403; registered → his own (empty) space.
      const bobGw = new Gateway({ service: svc.url, token: t.bob, model: 'bc/1', keyDir: join(root, 'bobkeys') });
      await expect(bobGw.client.bytes('GET', '/api/v1/bc/1/model/trained')).rejects.toMatchObject({ code: 'CIPHERML_E_SERVICE_FORBIDDEN' });
      await bobGw.client.json('POST', '/api/v1/bc/1/application/register_user');
      await expect(bobGw.client.bytes('GET', '/api/v1/bc/1/model/trained')).rejects.toMatchObject({ code: 'CIPHERML_E_SERVICE_NOT_FOUND' });
      await expect(bobGw.client.json('GET', `/api/v1/bc/1/jobs/${figures.jobId}`)).rejects.toMatchObject({ code: 'CIPHERML_E_SERVICE_NOT_FOUND' });
      // Oversized upload → 413; bad hyper-parameters → 400 with the parameter named.
      await expect(bobGw.client.upload('PUT', '/api/v1/bc/1/data/fit', new Uint8Array(65 * 1024 * 1024))).rejects.toMatchObject({ code: 'CIPHERML_E_PAYLOAD_TOO_LARGE' });
      await expect(gw.client.json('POST', '/api/v1/bc/1/fit', { ...hyper, learningRate: 99 })).rejects.toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'learningRate' });
      // Undeploying with registered users is refused.
      await expect(new Gateway({ service: svc.url, token: t.owner, model: 'bc/1', keyDir }).client.json('DELETE', '/api/v1/bc/1/undeploy_model')).rejects.toMatchObject({ code: 'CIPHERML_E_SERVICE_CONFLICT' });
      // Malformed CSV is refused on the trusted side, naming the line.
      await expect(gw.predict('a,b\n1,2\n3,x\n')).rejects.toThrow(/line 3/);

      await svc.close();
      svc = await startService({ dataDir, port: 0 });
      const gw2 = new Gateway({ service: svc.url, token: t.alice, model: 'bc/1', keyDir });
      const job = await gw2.client.json<{ status: string; figures: { refreshes: number } }>('GET', `/api/v1/bc/1/jobs/${figures.jobId}`);
      expect(job).toMatchObject({ status: 'succeeded', figures: { refreshes: 2 } });
      // A new gateway machine restores the key from the sealed secret context and predicts the same.
      const gw3 = new Gateway({ service: svc.url, token: t.alice, model: 'bc/1', keyDir: join(root, 'keys-restored') });
      await expect(gw3.restoreKeys('wrong passphrase')).rejects.toMatchObject({ code: 'CIPHERML_E_FORMAT_CORRUPT' });
      await gw3.restoreKeys('alice passphrase');
      const restored = await gw3.predict(toFeatureLabelCsv(test).features);
      restored.forEach((v, i) => expect(Math.abs(v - p[i]!)).toBeLessThan(1e-4));
      const again = await gw2.predict(toFeatureLabelCsv(test).features);
      again.forEach((v, i) => expect(Math.abs(v - p[i]!)).toBeLessThan(1e-4));
      const usage = await gw2.client.json<{ usage: Record<string, number> }>('GET', '/api/v1/bc/1/usage');
      expect(usage.usage['fitJobs']).toBe(1);
    } finally {
      await svc.close();
    }

    // The secret key never reached the service: scan the database and every blob for its bytes.
    const keyFile = readFileSync(join(keyDir, 'bc@1', 'ckks'));
    const probe = keyFile.subarray(keyFile.length - 4096, keyFile.length - 4096 + 64);
    const files = readdirSync(dataDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) expect(readFileSync(join(f.parentPath, f.name)).includes(probe)).toBe(false);
  });
});
