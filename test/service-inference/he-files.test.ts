import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder, heDecrypt, heEncrypt, heKeygen, parseOnnx, runPlain, writeNpy } from '../../src/inference/index.ts';
import { packDeployBundle } from '../../src/inference/service-wire.ts';
import { startService } from '../../src/service/index.ts';
import { makeTokens } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'cipherml-svc-he-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The service takes the files of the `cipherml he` steps as they are: keys from `he keygen` on the
// downloaded keyparams, ciphertexts from `he encrypt`; its output is what `he decrypt` reads.
describe('inference on files made by he keygen / he encrypt, decrypted by he decrypt', () => {
  it('posts he encrypt output under he keygen keys and decrypts the job output to the plaintext executor', { timeout: 60_000 }, async () => {
    const dataDir = join(root, 'data');
    const t = await makeTokens(dataDir);
    const svc = await startService({ dataDir, port: 0, console: false });
    try {
      const b = new GraphBuilder(13);
      const x = b.input('x', [null, 3]);
      const h = b.node('Gemm', [x, b.init('w', { dims: [2, 3], data: Float64Array.of(0.3, -0.2, 0.5, 0.1, 0.4, -0.3) })], { transB: 1 });
      b.output(b.node('Mul', [h, h]), [null, 2]);
      const onnx = b.toBytes();
      const auth = (tok: string): Record<string, string> => ({ authorization: `Bearer ${tok}` });
      const bin = (tok: string): Record<string, string> => ({ ...auth(tok), 'content-type': 'application/octet-stream' });
      const M = '/api/v1/sq/1';
      expect((await fetch(`${svc.url}${M}/deploy_model`, { method: 'POST', headers: auth(t.owner) })).status).toBe(200);
      const calib = writeNpy({ dims: [6, 3], data: Float64Array.from({ length: 18 }, (_, i) => Math.cos(i)) });
      expect((await fetch(`${svc.url}${M}/inference/deploy`, { method: 'POST', headers: bin(t.owner), body: new Uint8Array(packDeployBundle(onnx, calib)) })).status).toBe(200);
      expect((await fetch(`${svc.url}${M}/application/register_user`, { method: 'POST', headers: auth(t.alice) })).status).toBe(200);
      writeFileSync(join(root, 'keyparams.json'), await (await fetch(`${svc.url}${M}/inference/keyparams`, { headers: auth(t.alice) })).text());
      await heKeygen({ keyParams: join(root, 'keyparams.json'), out: join(root, 'key') });
      const input = { dims: [2, 3], data: Float64Array.of(0.2, -0.5, 0.9, -0.1, 0.3, 0.7) };
      writeFileSync(join(root, 'input.npy'), writeNpy(input));
      await heEncrypt({ key: join(root, 'key'), input: join(root, 'input.npy'), out: join(root, 'input.enc') });
      expect((await fetch(`${svc.url}${M}/inference/keys`, { method: 'PUT', headers: bin(t.alice), body: new Uint8Array(readFileSync(join(root, 'key.pub'))) })).status).toBe(200);
      const posted = await fetch(`${svc.url}${M}/inference`, { method: 'POST', headers: bin(t.alice), body: new Uint8Array(readFileSync(join(root, 'input.enc'))) });
      expect(posted.status).toBe(202);
      const { jobId } = (await posted.json()) as { jobId: string };
      await svc.idle();
      const out = await fetch(`${svc.url}${M}/jobs/${jobId}/output`, { headers: auth(t.alice) });
      expect(out.status).toBe(200);
      writeFileSync(join(root, 'output.enc'), new Uint8Array(await out.arrayBuffer()));
      const dec = await heDecrypt({ key: join(root, 'key'), input: join(root, 'output.enc'), out: join(root, 'output.npy') });
      const plain = runPlain(parseOnnx(onnx), input);
      expect(dec.dims).toEqual([2, 2]);
      for (let i = 0; i < 4; i++) expect(Math.abs(dec.data[i]! - plain.data[i]!)).toBeLessThan(1e-3);
    } finally {
      await svc.close();
    }
  });
});
