import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CkksContext, readSecretKeyFile } from '../../src/ckks/index.ts';
import { encryptTrainingData, TRAIN_CKKS_PARAMETERS } from '../../src/service/index.ts';
import { startGatewayServer } from '../../src/gateway/index.ts';
import { openStorage, startService } from '../../src/service/index.ts';

const root = mkdtempSync(join(tmpdir(), 'cipherml-gw-http-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('gateway local HTTP server', () => {
  it('generates keys, uploads the public context, encrypts fit/predict data, and names the bad CSV line', async () => {
    const dataDir = join(root, 'data');
    const s = await openStorage({ dataDir });
    const owner = await s.createToken((await s.ensureUser('owner', 'owner')).id);
    const aliceUser = await s.ensureUser('alice', 'user');
    const alice = await s.createToken(aliceUser.id);
    await s.close();
    const svc = await startService({ dataDir, port: 0 });
    const gw = await startGatewayServer({ service: svc.url, token: alice, keyDir: join(root, 'keys') });
    try {
      await fetch(`${svc.url}/api/v1/lr/2/deploy_model`, { method: 'POST', headers: { authorization: `Bearer ${owner}` } });
      const post = (path: string, body: unknown): Promise<Response> => fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.localToken}` }, body: JSON.stringify(body) });
      const keys = (await (await post('/keys/generate/model', { model: 'lr/2' })).json()) as { fingerprint: string };
      expect(keys.fingerprint).toMatch(/^[0-9a-f]{32}$/);
      const model = (await svc.storage.getModel('lr', '2'))!;
      expect((await svc.storage.blobInfo(aliceUser.id, model.id, 'public_context'))!.size).toBeGreaterThan(1000);

      const fit = await post('/encrypt/data/fit', { model: 'lr/2', features: 'a,b\n1,2\n3,4\n', labels: 'y\n1\n0\n' });
      expect(fit.status).toBe(200);
      expect(fit.headers.get('x-cipherml-rows')).toBe('2');
      const bytes = new Uint8Array(await fit.arrayBuffer());
      const ctx = await readSecretKeyFile(join(root, 'keys', 'lr@2', 'ckks'));
      try {
        const { deserializeCiphertexts } = await import('../../src/ckks/index.ts');
        const { vectors, meta } = deserializeCiphertexts(ctx, bytes);
        expect(meta).toMatchObject({ kind: 'train_data', rows: 2, features: 2, period: 2, blocks: 1 });
        const col = ctx.decryptVector(vectors[1]!, 4);
        expect(Array.from(col, (v) => Math.round(v * 1000) / 1000)).toEqual([2, 4, 2, 4]);
        for (const v of vectors) v.delete();
      } finally {
        ctx.delete();
      }

      const bad = await post('/encrypt/data/fit', { model: 'lr/2', features: 'a,b\n1,2\n3,oops\n', labels: 'y\n1\n0\n' });
      expect(bad.status).toBe(400);
      const err = ((await bad.json()) as { error: { code: string; message: string } }).error;
      expect(err.code).toBe('CIPHERML_E_CSV_INVALID');
      expect(err.message).toContain('line 3');
      // The service refuses ciphertexts under another key set and bytes that are no ciphertexts.
      const put = (body: Uint8Array): Promise<Response> => fetch(`${svc.url}/api/v1/lr/2/data/fit`, { method: 'PUT', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/octet-stream' }, body: new Uint8Array(body) });
      expect((await put(bytes)).status).toBe(200);
      const other = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: [1] });
      try {
        const foreign = await put(encryptTrainingData(other, [Float64Array.of(1, 2)], [1]));
        expect(foreign.status).toBe(400);
        expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('CIPHERML_E_KEY_MISMATCH');
      } finally {
        other.delete();
      }
      const junk = await put(new Uint8Array(100).fill(7));
      expect(junk.status).toBe(400);
      expect(((await junk.json()) as { error: { code: string } }).error.code).toMatch(/^CIPHERML_E_FORMAT_/);
      const pred = await post('/encrypt/data/predict', { model: 'lr/2', features: 'a,b\n1,2\n' });
      expect(pred.status).toBe(200);
      const noKeys = await post('/encrypt/data/predict', { model: 'other/1', features: 'a\n1\n' });
      expect(noKeys.status).toBe(400);
    } finally {
      await gw.close();
      await svc.close();
    }
  });
});
