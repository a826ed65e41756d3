import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEnclaveTls } from '../../src/enclave/tls.ts';
import { gatewayDeploy, gatewayInfer } from '../../src/gateway/index.ts';
import { parseOnnx, readNpy, runPlain, writeNpy } from '../../src/inference/index.ts';
import { openStorage, startQueueWorker, startService } from '../../src/service/index.ts';
import { cli } from '../helpers.ts';
import { MNIST_ONNX, calibrationNpz, mnistDigits } from '../service-inference/helpers.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'cipherml.js');
const argmax = (a: ArrayLike<number>): number => Array.prototype.indexOf.call(a, Math.max(...Array.from(a))) as number;
const redis = process.env['CIPHERML_TEST_REDIS_URL'];
if (redis === undefined || redis === '') console.warn('service inference queue test: CIPHERML_TEST_REDIS_URL is not set, BullMQ test SKIPPED');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cipherml-svc-infer-slow-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('encrypted inference: CLI gateway against `cipherml serve` over TLS', () => {
  it('gateway deploy, then gateway infer on 4 digits twice (keys made and uploaded once), equal to the plaintext executor', { timeout: 900_000 }, async () => {
    const data = join(dir, 'data');
    const tls = generateEnclaveTls(['127.0.0.1', 'localhost']);
    await writeFile(join(dir, 'cert.pem'), tls.certPem);
    await writeFile(join(dir, 'key.pem'), tls.keyPem);
    const owner = (await cli('serve', 'token', 'create', '--data', data, '--user', 'owner', '--role', 'owner')).stdout.trim().split('\n').at(-1)!;
    const alice = (await cli('serve', 'token', 'create', '--data', data, '--user', 'alice')).stdout.trim().split('\n').at(-1)!;
    const server = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data', data, '--json', '--no-console', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const { url } = JSON.parse(await new Promise<string>((resolve) => createInterface({ input: server.stdout }).once('line', resolve))) as { url: string };
      expect(url.startsWith('https://')).toBe(true);
      await writeFile(join(dir, 'calibration.npz'), calibrationNpz(100));
      const dep = await cli('gateway', 'deploy', '--service', url, '--token', owner, '--model', 'mnist/1', '--onnx', 'examples/he/mnist_square.onnx', '--calibration', join(dir, 'calibration.npz'), '--tls-ca', join(dir, 'cert.pem'), '--json');
      expect(dep.code, dep.stdout).toBe(0);
      expect(JSON.parse(dep.stdout)).toMatchObject({ modelUrl: '/api/v1/mnist/1', packing: 'auto' });
      const noCa = await cli('gateway', 'deploy', '--service', url, '--token', owner, '--model', 'mnist/1', '--onnx', 'examples/he/mnist_square.onnx', '--calibration', join(dir, 'calibration.npz'), '--json');
      expect(JSON.parse(noCa.stdout).error.code).toBe('CIPHERML_E_PEER_UNAVAILABLE');

      const input = mnistDigits(500, 4);
      await writeFile(join(dir, 'input.npy'), writeNpy(input));
      const common = ['--service', url, '--token', alice, '--model', 'mnist/1', '--key-dir', join(dir, 'keys'), '--tls-ca', join(dir, 'cert.pem'), '-i', join(dir, 'input.npy')];
      const plain = runPlain(parseOnnx(MNIST_ONNX), input);
      for (const [round, out] of [[1, 'out1.npy'], [2, 'out2.npy']] as const) {
        const r = await cli('gateway', 'infer', ...common, '-o', join(dir, out), '--json');
        expect(r.code, r.stdout).toBe(0);
        expect(JSON.parse(r.stdout)).toMatchObject({ keysGenerated: round === 1, keysUploaded: round === 1, dims: [4, 10] });
        const got = readNpy(await readFile(join(dir, out)));
        expect(got.dims).toEqual([4, 10]);
        for (let s = 0; s < 4; s++) {
          const row = got.data.subarray(s * 10, s * 10 + 10);
          const want = plain.data.subarray(s * 10, s * 10 + 10);
          expect(argmax(row)).toBe(argmax(want));
          for (let j = 0; j < 10; j++) expect(Math.abs(row[j]! - want[j]!)).toBeLessThan(2e-2);
        }
      }
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
  });
});

describe.skipIf(redis === undefined || redis === '')('encrypted inference jobs through BullMQ and a separate worker', () => {
  it('queues the job until a worker runs it; the output decrypts to the plaintext scores', { timeout: 600_000 }, async () => {
    const ref = { dataDir: join(dir, 'qdata') };
    const s = await openStorage(ref);
    const tag = Math.random().toString(36).slice(2, 8);
    const owner = await s.createToken((await s.ensureUser(`iowner-${tag}`, 'owner')).id);
    const alice = await s.createToken((await s.ensureUser(`ialice-${tag}`, 'user')).id);
    await s.close();
    const svc = await startService({ ...ref, port: 0, redis, console: false });
    let worker: { close(): Promise<void> } | undefined;
    try {
      await gatewayDeploy({ service: svc.url, token: owner, model: `m${tag}/1`, onnx: MNIST_ONNX, calibration: calibrationNpz(8) });
      const input = mnistDigits(7, 1);
      // No worker yet: the job waits in the queue; the service runs no job itself.
      const pending = gatewayInfer({ service: svc.url, token: alice, model: `m${tag}/1`, keyDir: join(dir, 'qkeys'), input, pollMs: 100, onProgress: (line) => {
        if (line.startsWith('job ')) {
          void (async (): Promise<void> => {
            await new Promise((r) => setTimeout(r, 1500));
            const jobs = await svc.storage.listJobs({ status: ['queued'] });
            expect(jobs.length).toBe(1);
            worker = await startQueueWorker(ref, redis!);
          })();
        }
      } });
      const r = await pending;
      expect(worker).toBeDefined();
      const plain = runPlain(parseOnnx(MNIST_ONNX), input);
      for (let j = 0; j < 10; j++) expect(Math.abs(r.output.data[j]! - plain.data[j]!)).toBeLessThan(1e-2);

      // Cancel a queued job: it ends cancelled, frees the user, and a worker that picks it up later discards it.
      await worker!.close();
      worker = undefined;
      const M = `/api/v1/m${tag}/1`;
      const auth = { authorization: `Bearer ${alice}` };
      const { jobs: before } = (await (await fetch(`${svc.url}${M}/jobs`, { headers: auth })).json()) as { jobs: { jobId: string }[] };
      const again = gatewayInfer({ service: svc.url, token: alice, model: `m${tag}/1`, keyDir: join(dir, 'qkeys'), input, pollMs: 100 });
      let queued: { jobId: string } | undefined;
      while (queued === undefined) {
        await new Promise((res) => setTimeout(res, 200));
        const { jobs } = (await (await fetch(`${svc.url}${M}/jobs`, { headers: auth })).json()) as { jobs: { jobId: string; status: string }[] };
        queued = jobs.find((j) => !before.some((b) => b.jobId === j.jobId));
      }
      const cancel = await fetch(`${svc.url}${M}/jobs/${queued.jobId}/cancel`, { method: 'POST', headers: auth });
      expect(await cancel.json()).toMatchObject({ jobId: queued.jobId, kind: 'infer', status: 'cancelled' });
      await expect(again).rejects.toMatchObject({ code: 'CIPHERML_E_JOB_CANCELLED', message: expect.stringContaining('cancelled by its user') });
      worker = await startQueueWorker(ref, redis!);
      await new Promise((res) => setTimeout(res, 3000));
      const job = (await (await fetch(`${svc.url}${M}/jobs/${queued.jobId}`, { headers: auth })).json()) as { status: string; error: { message: string } };
      expect(job).toMatchObject({ status: 'cancelled', error: { message: 'cancelled by its user' } });
      expect((await fetch(`${svc.url}${M}/jobs/${queued.jobId}/output`, { headers: auth })).status).toBe(409);
    } finally {
      await worker?.close();
      await svc.close();
    }
  });
});
