import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayDeploy, gatewayInfer } from '../../src/gateway/index.ts';
import { parseOnnx, runPlain } from '../../src/inference/index.ts';
import { startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';
import { MNIST_ONNX, calibrationNpz, makeTokens, mnistDigits } from '../service-inference/helpers.ts';

// HE4Cloud's inference flow on the service (docs/service.md "Encrypted inference"): deploy →
// register → upload evaluation keys → encrypted predict → decrypt on the trusted side, on the
// bundled MNIST model, checked against the plaintext executor. One digit, 8 calibration samples;
// more digits, key reuse, the CLI and the Redis queue are in test/slow/service-inference.test.ts.
const root = mkdtempSync(join(tmpdir(), 'cipherml-svc-infer-'));
let svc: RunningService;
let t: Awaited<ReturnType<typeof makeTokens>>;
beforeAll(async () => {
  const dataDir = join(root, 'data');
  t = await makeTokens(dataDir);
  svc = await startService({ dataDir, port: 0, console: false });
});
afterAll(async () => {
  await svc?.close();
  rmSync(root, { recursive: true, force: true });
});

const argmax = (a: ArrayLike<number>): number => Array.prototype.indexOf.call(a, Math.max(...Array.from(a))) as number;

describe('encrypted inference in the service (MNIST, worker threads)', () => {
  it('deploy → register → upload keys → encrypted predict → decrypt equals the plaintext executor', { timeout: 120_000 }, async () => {
    const service = svc.url;
    const dep = await gatewayDeploy({ service, token: t.owner, model: 'mnist/1', onnx: MNIST_ONNX, calibration: calibrationNpz(8) });
    expect(dep.modelUrl).toBe('/api/v1/mnist/1');
    // The model URL resolves and publishes the calibrated model and its keyparams.
    const published = (await (await fetch(`${service}${dep.modelUrl}`, { headers: { authorization: `Bearer ${t.alice}` } })).json()) as { inference: { keyParamsUrl: string; calibratedModelUrl: string; calibratedModelSha256: string } };
    expect(published.inference.keyParamsUrl).toBe('/api/v1/mnist/1/inference/keyparams');
    const calibrated = new Uint8Array(await (await fetch(`${service}${published.inference.calibratedModelUrl}`, { headers: { authorization: `Bearer ${t.alice}` } })).arrayBuffer());
    const kp = (await (await fetch(`${service}${published.inference.keyParamsUrl}`, { headers: { authorization: `Bearer ${t.alice}` } })).json()) as { format: string; samples: number };
    expect(kp).toMatchObject({ format: 'cipherml-he-keyparams', samples: 8 });

    const keyDir = join(root, 'keys-alice');
    const input = mnistDigits(0, 1);
    const first = await gatewayInfer({ service, token: t.alice, model: 'mnist/1', keyDir, input, pollMs: 50 });
    expect(first).toMatchObject({ keysGenerated: true, keysUploaded: true, packing: 'single' });
    expect(first.output.dims).toEqual([1, 10]);
    expect(statSync(join(keyDir, 'mnist@1', 'he-key')).mode & 0o777).toBe(0o600);
    const plainCalibrated = runPlain(parseOnnx(calibrated), input);
    const plainOriginal = runPlain(parseOnnx(MNIST_ONNX), input);
    for (let j = 0; j < 10; j++) {
      expect(Math.abs(first.output.data[j]! - plainCalibrated.data[j]!)).toBeLessThan(1e-2);
      expect(Math.abs(first.output.data[j]! - plainOriginal.data[j]!)).toBeLessThan(1e-2);
    }
    expect(argmax(first.output.data)).toBe(argmax(plainOriginal.data));

    // The job lifecycle: its status, and its output to its user.
    const job = (await (await fetch(`${service}/api/v1/mnist/1/jobs/${first.jobId}`, { headers: { authorization: `Bearer ${t.alice}` } })).json()) as { status: string; progress: number };
    expect(job).toMatchObject({ status: 'succeeded', progress: 1 });
    const usage = (await (await fetch(`${service}/api/v1/mnist/1/usage`, { headers: { authorization: `Bearer ${t.alice}` } })).json()) as { usage: Record<string, number> };
    expect(usage.usage['inferJobs']).toBe(1);
  });
});
