import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayDeploy, gatewayInfer } from '../../src/gateway/index.ts';
import { readSecretKeyFile } from '../../src/ckks/index.ts';
import { encryptSingle, parseOnnx, runPlain } from '../../src/inference/index.ts';
import { startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';
import type { JobEvent } from '../../src/service/job-log.ts';
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

  it('an inference job records its progress between 0 and 1 in its log as the executor runs; a failure in the executor still ends it failed', { timeout: 180_000 }, async () => {
    const service = svc.url;
    await gatewayDeploy({ service, token: t.owner, model: 'mnist/2', onnx: MNIST_ONNX, calibration: calibrationNpz(8) });
    const keyDir = join(root, 'keys-bob');
    const r = await gatewayInfer({ service, token: t.bob, model: 'mnist/2', keyDir, input: mnistDigits(3, 1), pollMs: 50 });
    const auth = { authorization: `Bearer ${t.bob}` };
    const job = (await (await fetch(`${service}/api/v1/mnist/2/jobs/${r.jobId}`, { headers: auth })).json()) as { status: string; progress: number; figures: { log: JobEvent[] } };
    expect(job).toMatchObject({ status: 'succeeded', progress: 1 });
    const events = job.figures.log.map((e) => e.event);
    expect(events[0]).toBe('queued');
    expect(events[1]).toBe('running');
    expect(events.at(-1)).toBe('succeeded');
    // Every event between 'running' and 'succeeded' is a step of the executor, each strictly between 0 and 1, increasing.
    const steps = job.figures.log.slice(2, -1).map((e) => {
      expect(e.event).toBe('progress');
      const m = /^step (\d+) of (\d+) done \(.+\): [\d.]+ %$/.exec(e.message);
      expect(m, e.message).not.toBeNull();
      return Number(m![1]) / Number(m![2]);
    });
    console.log(`inference job progress recorded: ${steps.map((p) => p.toFixed(2)).join(', ')} (${job.figures.log.slice(1).map((e) => `${e.event} @${e.t - job.figures.log[1]!.t} ms`).join(', ')})`);
    expect(steps.length).toBeGreaterThan(0);
    for (const p of steps) expect(p > 0 && p < 1, String(p)).toBe(true);
    for (let i = 1; i < steps.length; i++) expect(steps[i]!).toBeGreaterThan(steps[i - 1]!);

    // An input of the wrong shape under the same keys: accepted at upload (it loads under the keys),
    // refused by the executor on its thread; the job ends failed with the executor's error.
    const client = await readSecretKeyFile(join(keyDir, 'mnist@2', 'he-key'));
    let bad: Uint8Array;
    try {
      bad = encryptSingle(client, [Float64Array.of(0.1, 0.2, 0.3, 0.4)], [1, 2, 2]);
    } finally {
      client.delete();
    }
    const posted = await fetch(`${service}/api/v1/mnist/2/inference`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: bad });
    expect(posted.status).toBe(202);
    const { jobId } = (await posted.json()) as { jobId: string };
    let failed: { status: string; error: { code: string; message: string } | null; figures: { log: JobEvent[] } } | undefined;
    for (let i = 0; i < 600 && (failed === undefined || failed.status === 'queued' || failed.status === 'running'); i++) {
      await new Promise((res) => setTimeout(res, 100));
      failed = (await (await fetch(`${service}/api/v1/mnist/2/jobs/${jobId}`, { headers: auth })).json()) as typeof failed;
    }
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'CIPHERML_E_INFERENCE_INPUT_SHAPE' } });
    expect(failed!.figures.log.at(-1)).toMatchObject({ event: 'failed', message: expect.stringContaining('CIPHERML_E_INFERENCE_INPUT_SHAPE') });
    expect((await fetch(`${service}/api/v1/mnist/2/jobs/${jobId}/output`, { headers: auth })).status).toBe(409);
  });

  it('an inference job cancelled while it runs (status running) ends cancelled, stays cancelled, has no output, and frees its user', { timeout: 180_000 }, async () => {
    const service = svc.url;
    await gatewayDeploy({ service, token: t.owner, model: 'mnist/3', onnx: MNIST_ONNX, calibration: calibrationNpz(8) });
    const keyDir = join(root, 'keys-alice-3');
    const digit = mnistDigits(5, 1);
    const done = await gatewayInfer({ service, token: t.alice, model: 'mnist/3', keyDir, input: digit, pollMs: 50 });
    const auth = { authorization: `Bearer ${t.alice}` };
    const inferMs = (await (await fetch(`${service}/api/v1/mnist/3/jobs/${done.jobId}`, { headers: auth })).json()) as { figures: { inferMs: number } };
    const client = await readSecretKeyFile(join(keyDir, 'mnist@3', 'he-key'));
    let body: Uint8Array;
    try {
      body = encryptSingle(client, [Float64Array.from(digit.data)], [1, 28, 28]);
    } finally {
      client.delete();
    }
    const post = async (): Promise<string> => {
      const r = await fetch(`${service}/api/v1/mnist/3/inference`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body });
      expect(r.status).toBe(202);
      return ((await r.json()) as { jobId: string }).jobId;
    };
    const state = async (id: string): Promise<{ status: string; progress: number }> => (await fetch(`${service}/api/v1/mnist/3/jobs/${id}`, { headers: auth })).json() as Promise<{ status: string; progress: number }>;
    const jobId = await post();
    let s = await state(jobId);
    for (let i = 0; i < 3000 && s.status === 'queued'; i++) {
      await new Promise((res) => setTimeout(res, 10));
      s = await state(jobId);
    }
    expect(s.status).toBe('running');
    const cancelled = await fetch(`${service}/api/v1/mnist/3/jobs/${jobId}/cancel`, { method: 'POST', headers: auth });
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as { status: string }).status).toBe('cancelled');
    // Longer than the whole job took before: a thread that kept running would have finished by now.
    await new Promise((res) => setTimeout(res, Math.max(2000, 2 * inferMs.figures.inferMs)));
    expect((await state(jobId)).status).toBe('cancelled');
    expect((await fetch(`${service}/api/v1/mnist/3/jobs/${jobId}/output`, { headers: auth })).status).toBe(409);
    // The user is free: the next job runs to the end.
    const next = await post();
    let n = await state(next);
    for (let i = 0; i < 1200 && (n.status === 'queued' || n.status === 'running'); i++) {
      await new Promise((res) => setTimeout(res, 100));
      n = await state(next);
    }
    expect(n).toMatchObject({ status: 'succeeded', progress: 1 });
  });
});
