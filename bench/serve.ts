// `cipherml bench serve`: encrypted-inference jobs per minute on the bundled MNIST model with 1
// and 2 `cipherml serve worker` processes against Redis (the scale-out ratio), and requests per
// second of an authenticated list route at 50 concurrent clients, in one run on this machine.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CkksContext, serializePublicContext } from '../src/ckks/index.ts';
import { packageRoot } from '../src/core/paths.ts';
import { encryptSingle, readArrays, writeNpy, writeZip } from '../src/inference/index.ts';
import type { KeyParams } from '../src/inference/index.ts';
import { inferencePaths, packDeployBundle } from '../src/inference/service-wire.ts';
import { openStorage, startService } from '../src/service/index.ts';

/** Options of {@link runServeBench}. */
export interface ServeBenchOptions {
  readonly redis: string;
  /** Inference jobs per worker-count configuration (one per user, all posted at once). */
  readonly jobs: number;
  /** Requests of the list scenario. */
  readonly listRequests: number;
  readonly concurrency: number;
  readonly onProgress?: (line: string) => void;
}

/** One worker-count configuration. */
export interface InferenceRun {
  readonly workers: number;
  readonly jobs: number;
  readonly seconds: number;
  readonly jobsPerMinute: number;
}

/** Result of {@link runServeBench}. */
export interface ServeBenchResult {
  readonly model: string;
  readonly inference: readonly InferenceRun[];
  /** jobs/min with 2 workers ÷ jobs/min with 1. */
  readonly scaleOut: number;
  readonly list: { readonly route: string; readonly concurrency: number; readonly requests: number; readonly requestsPerSecond: number; readonly p50Ms: number; readonly p99Ms: number; readonly failures: number };
  readonly cores: number;
}

const bin = (): string => join(packageRoot(), 'bin', 'cipherml.js');

async function startWorker(dataDir: string, redis: string): Promise<ChildProcess> {
  const w = spawn(process.execPath, [bin(), 'serve', 'worker', '--data', dataDir, '--redis', redis], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: w.stderr! }).on('line', (l) => {
      if (l.includes('waiting for')) resolve();
    });
    w.once('exit', (code) => reject(new Error(`serve worker exited with ${code}`)));
  });
  return w;
}

/**
 * Runs the benchmark (see the file comment). Every user uploads the same evaluation keys and
 * posts the same encrypted digit, so the figures are the service's and workers' alone.
 *
 * @example
 * ```ts
 * const r = await runServeBench({ redis: 'redis://127.0.0.1:6379', jobs: 4, listRequests: 2000, concurrency: 50 });
 * ```
 */
export async function runServeBench(o: ServeBenchOptions): Promise<ServeBenchResult> {
  const log = o.onProgress ?? ((): void => undefined);
  const dataDir = await mkdtemp(join(tmpdir(), 'cipherml-bench-serve-'));
  const s = await openStorage({ dataDir });
  const owner = await s.createToken((await s.ensureUser('owner', 'owner')).id);
  const users: string[] = [];
  for (let i = 0; i < o.jobs; i++) users.push(await s.createToken((await s.ensureUser(`user${i}`, 'user')).id));
  await s.close();
  const svc = await startService({ dataDir, port: 0, redis: o.redis, console: false });
  const workers: ChildProcess[] = [];
  const root = packageRoot();
  try {
    const call = async (method: string, path: string, token: string, body?: Uint8Array): Promise<Response> => {
      const res = await fetch(`${svc.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/octet-stream' }) }, ...(body === undefined ? {} : { body: new Uint8Array(body) }) });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res;
    };
    const p = inferencePaths('mnist', '1');
    await call('POST', p.deployModel, owner);
    const calib = readArrays(await readFile(join(root, 'examples/he/calibration.npz')), 'calibration')[0]!;
    const npz = writeZip(new Map([['x.npy', writeNpy({ dims: [16, 1, 28, 28], data: calib.data.slice(0, 16 * 784) })]]));
    await call('POST', p.deploy, owner, packDeployBundle(await readFile(join(root, 'examples/he/mnist_square.onnx')), npz));
    const kp = (await (await call('GET', p.keyParams, owner)).json()) as KeyParams;
    log('bench serve: deployed mnist/1; making one key set for every user');
    const ctx = await CkksContext.create(kp.params, { galoisSteps: kp.galoisSteps });
    let pub: Uint8Array;
    let input: Uint8Array;
    try {
      pub = serializePublicContext(ctx);
      input = encryptSingle(ctx, [calib.data.slice(0, 784)], [1, 28, 28]);
    } finally {
      ctx.delete();
    }
    for (const u of users) {
      await call('POST', p.register, u);
      await call('PUT', p.keys, u, pub);
    }
    const inference: InferenceRun[] = [];
    for (const n of [1, 2]) {
      while (workers.length < n) workers.push(await startWorker(dataDir, o.redis));
      log(`bench serve: ${o.jobs} inference jobs with ${n} serve worker(s)`);
      const t0 = performance.now();
      const ids = await Promise.all(users.map(async (u) => ((await (await call('POST', p.infer, u, input)).json()) as { jobId: string }).jobId));
      await Promise.all(ids.map(async (id, i) => {
        for (;;) {
          const j = (await (await call('GET', p.job(id), users[i]!)).json()) as { status: string; error: unknown };
          if (j.status === 'succeeded') return;
          if (j.status === 'failed') throw new Error(`job ${id} failed: ${JSON.stringify(j.error)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }));
      const seconds = (performance.now() - t0) / 1000;
      inference.push({ workers: n, jobs: o.jobs, seconds, jobsPerMinute: (o.jobs * 60) / seconds });
    }
    log(`bench serve: ${o.listRequests} GET /api/v1/models at ${o.concurrency} concurrent clients`);
    const lat: number[] = [];
    let failures = 0;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: o.concurrency }, async () => {
      while (next < o.listRequests) {
        next++;
        const t = performance.now();
        const res = await fetch(`${svc.url}/api/v1/models`, { headers: { authorization: `Bearer ${users[0]}` } }).catch(() => undefined);
        if (res?.ok !== true) failures++;
        await res?.arrayBuffer();
        lat.push(performance.now() - t);
      }
    }));
    const wall = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    const q = (f: number): number => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))]!;
    const [one, two] = inference;
    const { availableParallelism } = await import('node:os');
    return {
      model: 'examples/he/mnist_square.onnx (single plan, one digit per job)',
      inference,
      scaleOut: two!.jobsPerMinute / one!.jobsPerMinute,
      list: { route: 'GET /api/v1/models', concurrency: o.concurrency, requests: lat.length, requestsPerSecond: lat.length / wall, p50Ms: q(0.5), p99Ms: q(0.99), failures },
      cores: availableParallelism(),
    };
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => (w.exitCode === null ? new Promise((r) => w.once('exit', r)) : undefined)));
    await svc.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The result as a table. */
export function formatServeBench(r: ServeBenchResult): string {
  return [
    `encrypted inference, ${r.model}, ${r.cores} cores:`,
    ...r.inference.map((x) => `  ${x.workers} serve worker(s): ${x.jobs} jobs in ${x.seconds.toFixed(1)} s = ${x.jobsPerMinute.toFixed(2)} jobs/min`),
    `  scale-out (2 workers / 1): ${r.scaleOut.toFixed(2)}×`,
    `${r.list.route} at ${r.list.concurrency} concurrent clients: ${r.list.requestsPerSecond.toFixed(0)} req/s, p50 ${r.list.p50Ms.toFixed(1)} ms, p99 ${r.list.p99Ms.toFixed(1)} ms, ${r.list.failures} failures of ${r.list.requests}`,
  ].join('\n');
}
