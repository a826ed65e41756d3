import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { createClient, createRouterTransport } from '@connectrpc/connect';
import { CkksContext, encryptToBytes, serializePublicContext } from '../src/ckks/index.ts';
import { FederatedService, JoinRequestSchema } from '../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { PROTOCOL_VERSION } from '../src/fl/protocol.ts';
import { FlServer } from '../src/fl/server.ts';
import { PlainFedAvg } from '../src/fl/strategy.ts';
import { TRAIN_CKKS_PARAMETERS, openStorage, trainingGaloisSteps } from '../src/service/index.ts';
import { ckksBomb, deepJson } from './bombs.ts';

/**
 * Robustness benchmark: the hostile requests of issue 13, each sent to the protected service and
 * to the naive baseline (the same code with the internal `unsafeNaive` hook: authentication after
 * the body, one global body limit, unbounded JSON, CKKS bodies decompressed to their declared size
 * on the HTTP thread) in the same run. Each service runs in its own child process, so its peak
 * RSS (VmHWM from /proc) is charged to it alone and an attack that kills it does not stop the
 * run. Reported per attack: time until the answer (or the crash) and peak-RSS growth. Then the
 * latency of GET /models while `uploads` users upload a training-size public context at once, and
 * 128 concurrent authenticated list requests.
 */

const MiB = 1 << 20;
/** Refusals timed per attack on the protected path (the median is reported): the machine is shared and noisy. */
const REPS = 15;

export interface AttackRow {
  readonly attack: string;
  readonly path: 'protected' | 'naive';
  readonly status: number | 'crashed' | 'timeout';
  readonly code: string;
  readonly ms: number;
  readonly rssGrowthMb: number;
}

export interface LoadRow {
  readonly path: 'protected' | 'naive';
  readonly uploads: number;
  readonly contextMb: number;
  readonly uploadsOk: number;
  readonly listRequests: number;
  readonly listP50Ms: number;
  readonly listP99Ms: number;
  readonly listMaxMs: number;
  readonly concurrent: number;
  readonly concurrentFailures: number;
  readonly concurrentP99Ms: number;
}

export interface RobustnessReport {
  readonly attacks: readonly AttackRow[];
  readonly load: readonly LoadRow[];
  readonly targets: { readonly refuseMs: number; readonly rssGrowthMb: number; readonly listP99Ms: number };
}

export interface RobustnessBenchOptions {
  /** Concurrent public-context uploaders in the load scenario (default 20). */
  readonly uploads?: number;
  /** Concurrent list requests (default 128). */
  readonly concurrent?: number;
  /** Skip the naive load scenario (it stalls for tens of seconds by design). */
  readonly skipNaiveLoad?: boolean;
  /** Only the hostile requests, no load scenario (minutes shorter; for profiling refusals). */
  readonly attacksOnly?: boolean;
  readonly onProgress?: (line: string) => void;
}

interface Child {
  readonly url: string;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  isAlive(): boolean;
  kill(): void;
}

/** Peak resident set of a process in bytes (VmHWM), or NaN once it is gone. */
function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? Number.NaN : Number(m[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

async function startChild(dataDir: string, naive: boolean, heapMb: number): Promise<Child> {
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, join(import.meta.dirname, 'service-child.ts'), dataDir, ...(naive ? ['--naive'] : [])], { stdio: ['ignore', 'pipe', 'ignore'] });
  let alive = true;
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      alive = false;
      resolve(code);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
    void exited.then(() => reject(new Error('service child exited before listening')));
  });
  return { url, pid: child.pid!, exited, isAlive: () => alive, kill: () => void child.kill('SIGKILL') };
}

interface Users {
  readonly owner: string;
  readonly users: readonly string[];
}

async function makeUsers(dataDir: string, n: number): Promise<Users> {
  const s = await openStorage({ dataDir });
  try {
    const owner = await s.createToken((await s.ensureUser('owner', 'owner')).id);
    const users: string[] = [];
    for (let i = 0; i < n; i++) users.push(await s.createToken((await s.ensureUser(`user${i}`, 'user')).id));
    return { owner, users };
  } finally {
    await s.close();
  }
}

const auth = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

async function send(url: string, init: RequestInit & { timeoutMs?: number }): Promise<{ status: number; code: string } | 'failed'> {
  try {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 120_000) });
    const text = await r.text();
    let code = '';
    try {
      code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
    } catch {
      code = '';
    }
    return { status: r.status, code };
  } catch {
    return 'failed';
  }
}

/**
 * One raw HTTP exchange for the attacks (node:http, no client pooling): resolves on the response
 * even when the server answers and closes before the client finished sending (the 401 to an
 * anonymous 60 MB PUT), which fetch reports as a network error; 'failed' only without a response.
 */
function sendRaw(url: string, init: { method: string; headers?: Record<string, string>; body?: Uint8Array | string }, timeoutMs = 120_000): Promise<{ status: number; code: string } | 'failed'> {
  return new Promise((resolve) => {
    let answered = false;
    const req = httpRequest(url, { method: init.method, headers: init.headers ?? {}, agent: false, timeout: timeoutMs }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => resolve('failed'));
      res.on('end', () => {
        const code = ((): string => {
          try {
            return (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: string } }).error?.code ?? '';
          } catch {
            return '';
          }
        })();
        resolve({ status: res.statusCode ?? 0, code });
        req.destroy();
      });
    });
    req.on('error', () => {
      if (!answered) resolve('failed');
    });
    req.on('timeout', () => req.destroy());
    req.end(init.body);
  });
}

async function prepare(child: Child, users: Users, ctx: CkksContext, userCount: number): Promise<void> {
  const api = (p: string): string => `${child.url}/api/v1${p}`;
  await send(api('/m/1/deploy_model'), { method: 'POST', headers: auth(users.owner) });
  for (let i = 0; i < userCount; i++) await send(api('/m/1/application/register_user'), { method: 'POST', headers: auth(users.users[i]!) });
  const bin = { 'content-type': 'application/octet-stream' };
  await send(api('/m/1/context/public'), { method: 'PUT', headers: { ...auth(users.users[0]!), ...bin }, body: Buffer.from(serializePublicContext(ctx)) });
  await send(api('/m/1/model/trained'), { method: 'PUT', headers: { ...auth(users.users[0]!), ...bin }, body: Buffer.from(encryptToBytes(ctx, [[0.5]])) });
}

interface Attack {
  readonly name: string;
  readonly fatal: boolean;
  request(url: string, users: Users): Promise<{ status: number; code: string } | 'failed'>;
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/**
 * The load scenario against one service: `uploads` users PUT `context` at once while one client
 * lists the models in a loop; then `concurrent` list requests at once.
 *
 * @example
 * ```ts
 * const row = await measureLoad(url, users, context, 20, 128);
 * ```
 */
export async function measureLoad(url: string, users: Users, context: Uint8Array, uploads: number, concurrent: number): Promise<Omit<LoadRow, 'path'>> {
  const api = (p: string): string => `${url}/api/v1${p}`;
  const latencies: number[] = [];
  let uploading = true;
  const lister = (async () => {
    while (uploading) {
      const t0 = performance.now();
      await send(api('/models'), { headers: auth(users.owner), timeoutMs: 300_000 });
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const body = Buffer.from(context);
  const results = await Promise.all(
    Array.from({ length: uploads }, (_, i) => send(api('/m/1/context/public'), { method: 'PUT', headers: { ...auth(users.users[i]!), 'content-type': 'application/octet-stream' }, body, timeoutMs: 600_000 })),
  );
  uploading = false;
  await lister;
  const burst: number[] = [];
  let failures = 0;
  for (let rep = 0; rep < 3; rep++) {
    const rs = await Promise.all(
      Array.from({ length: concurrent }, async () => {
        const t0 = performance.now();
        const r = await send(api('/models'), { headers: auth(users.owner), timeoutMs: 60_000 });
        return { ok: r !== 'failed' && r.status === 200, ms: performance.now() - t0 };
      }),
    );
    for (const r of rs) {
      burst.push(r.ms);
      if (!r.ok) failures++;
    }
  }
  return {
    uploads,
    contextMb: context.length / MiB,
    uploadsOk: results.filter((r) => r !== 'failed' && r.status === 200).length,
    listRequests: latencies.length,
    listP50Ms: percentile(latencies, 50),
    listP99Ms: percentile(latencies, 99),
    listMaxMs: Math.max(...latencies),
    concurrent: concurrent * 3,
    concurrentFailures: failures,
    concurrentP99Ms: percentile(burst, 99),
  };
}

/**
 * Runs every attack against both paths, then the load scenario.
 *
 * @example
 * ```ts
 * const r = await runRobustnessBench({ uploads: 20 });
 * console.log(formatRobustnessBench(r));
 * ```
 */
export async function runRobustnessBench(options: RobustnessBenchOptions = {}): Promise<RobustnessReport> {
  const progress = options.onProgress ?? (() => undefined);
  const uploads = options.uploads ?? 20;
  const concurrent = options.concurrent ?? 128;
  const root = mkdtempSync(join(tmpdir(), 'cipherml-bench-robust-'));
  const small = await CkksContext.create({ polyModulusDegree: 4096, coeffModulusBits: [40, 20, 40], scaleBits: 20 });
  const attacks: AttackRow[] = [];
  const load: LoadRow[] = [];
  try {
    const bombPub = await ckksBomb('publicKey', 512 * MiB);
    const bombCt = await ckksBomb('ciphertext', 512 * MiB, small.fingerprint);
    const anonymousBody = new Uint8Array(60 * MiB);
    const list: Attack[] = [
      {
        name: `zstd bomb to PUT context/public (${(bombPub.length / 1024).toFixed(0)} KB declaring 512 MiB)`,
        fatal: true,
        request: (u, us) => sendRaw(`${u}/api/v1/m/1/context/public`, { method: 'PUT', headers: { ...auth(us.users[0]!), 'content-type': 'application/octet-stream' }, body: bombPub }),
      },
      {
        name: `zstd bomb to POST predict (${(bombCt.length / 1024).toFixed(0)} KB declaring 512 MiB)`,
        fatal: true,
        request: (u, us) => sendRaw(`${u}/api/v1/m/1/predict?features=1`, { method: 'POST', headers: { ...auth(us.users[0]!), 'content-type': 'application/octet-stream' }, body: bombCt }),
      },
      {
        name: 'anonymous PUT of a 60 MB body',
        fatal: false,
        request: (u) => sendRaw(`${u}/api/v1/m/1/context/public`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: anonymousBody }),
      },
      {
        name: 'POST add_profile with 5,000-deep JSON',
        fatal: false,
        request: (u, us) => sendRaw(`${u}/api/v1/m/1/add_profile`, { method: 'POST', headers: { ...auth(us.users[0]!), 'content-type': 'application/json' }, body: deepJson(5000) }),
      },
    ];
    for (const path of ['protected', 'naive'] as const) {
      for (const a of list) {
        const dataDir = join(root, `${path}-${attacks.length}`);
        const users = await makeUsers(dataDir, 1);
        const child = await startChild(dataDir, path === 'naive', 1024);
        try {
          await prepare(child, users, small, 1);
          const before = peakRss(child.pid);
          progress(`${path}: ${a.name}`);
          // The protected path answers: the median of REPS sends; the naive one may die on the first.
          const times: number[] = [];
          let r: Awaited<ReturnType<Attack['request']>> | 'crashed' | 'timeout' = 'timeout';
          for (let rep = 0; rep < (path === 'protected' ? REPS : 1); rep++) {
            const t0 = performance.now();
            r = await Promise.race([a.request(child.url, users), child.exited.then(() => 'crashed' as const), new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 120_000).unref())]);
            times.push(performance.now() - t0);
          }
          const ms = percentile(times, 50);
          const after = peakRss(child.pid);
          // A reset connection is a crash when the process is gone within 5 s.
          if (r === 'failed') await Promise.race([child.exited, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
          const status: AttackRow['status'] = r === 'failed' ? (child.isAlive() ? 'timeout' : 'crashed') : typeof r === 'string' ? r : r.status;
          attacks.push({ attack: a.name, path, status, code: typeof r === 'object' ? r.code : '', ms, rssGrowthMb: (after - before) / MiB });
        } finally {
          child.kill();
        }
      }
    }
    // The federated server in this process: a 69-byte Join declaring 30 M parameters (240 MB as
    // float64; 300 M would take 2.4 GB on the naive path).
    for (const path of ['protected', 'naive'] as const) {
      const server = new FlServer({
        settings: { address: 'in-memory', numRounds: 1, fractionFit: 1, fractionEvaluate: 0, minFitClients: 1, minEvaluateClients: 0, minAvailableClients: 1, roundTimeoutMs: 1000, joinTimeoutMs: 1000, evalEvery: 1, runDir: join(root, `fl-${path}`), secret: '', maxMessageBytes: 64 * MiB, fitConfig: {}, seed: 1 },
        strategy: new PlainFedAvg(),
        unsafeNaiveJoin: path === 'naive',
      });
      await server.prepare();
      const rpc = createClient(FederatedService, createRouterTransport((r) => server.routes(r)));
      global.gc?.();
      const rss0 = process.memoryUsage().rss;
      // As for the HTTP attacks: the protected path is the median of REPS (a refused Join leaves
      // no trace, so they are the same request); the naive one accepts the first.
      const times: number[] = [];
      let r = { status: 1, code: '' };
      for (let rep = 0; rep < (path === 'protected' ? REPS : 1); rep++) {
        const t0 = performance.now();
        r = await rpc.join(create(JoinRequestSchema, { protocolVersion: PROTOCOL_VERSION, workerId: `x${rep}`, instanceId: 'i', token: '', numExamples: 1n, model: [{ name: 'w', shape: [30_000_000] }] })).then(
          () => ({ status: 0, code: 'accepted' }),
          (e: unknown) => ({ status: 1, code: /CIPHERML_E_[A-Z_]+/.exec(String((e as Error).message))?.[0] ?? 'error' }),
        );
        times.push(performance.now() - t0);
      }
      const ms = percentile(times, 50);
      attacks.push({ attack: 'FL Join declaring shape [30000000] (gRPC status 0 = accepted)', path, status: r.status, code: r.code, ms, rssGrowthMb: (process.memoryUsage().rss - rss0) / MiB });
      await server.close();
    }

    if (options.attacksOnly === true) return { attacks, load, targets: { refuseMs: 10, rssGrowthMb: 16, listP99Ms: 100 } };
    progress(`load: generating a training public context (N = ${TRAIN_CKKS_PARAMETERS.polyModulusDegree})`);
    const big = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: trainingGaloisSteps(4096) });
    const context = serializePublicContext(big);
    big.delete();
    for (const path of ['protected', 'naive'] as const) {
      if (path === 'naive' && options.skipNaiveLoad === true) continue;
      const dataDir = join(root, `load-${path}`);
      const users = await makeUsers(dataDir, uploads);
      const child = await startChild(dataDir, path === 'naive', 4096);
      try {
        await prepare(child, users, small, uploads);
        progress(`${path}: ${uploads} × ${(context.length / MiB).toFixed(1)} MB public-context uploads while listing models; then ${concurrent} concurrent lists`);
        load.push({ path, ...(await measureLoad(child.url, users, context, uploads, concurrent)) });
      } finally {
        child.kill();
      }
    }
    return { attacks, load, targets: { refuseMs: 10, rssGrowthMb: 16, listP99Ms: 100 } };
  } finally {
    small.delete();
    rmSync(root, { recursive: true, force: true });
  }
}

/** The report as a table. */
export function formatRobustnessBench(r: RobustnessReport): string {
  const lines = [
    `Refusing hostile requests (targets: ≤ ${r.targets.refuseMs} ms, peak-RSS growth ≤ ${r.targets.rssGrowthMb} MB); naive = same code with the issue-13 defences off`,
    `${'attack'.padEnd(72)} ${'path'.padEnd(10)} ${'answer'.padEnd(34)} ${'ms'.padStart(9)} ${'RSS +MB'.padStart(9)}`,
  ];
  for (const a of r.attacks) lines.push(`${a.attack.padEnd(72)} ${a.path.padEnd(10)} ${`${a.status} ${a.code}`.padEnd(34)} ${a.ms.toFixed(1).padStart(9)} ${(Number.isNaN(a.rssGrowthMb) ? 'n/a' : a.rssGrowthMb.toFixed(1)).padStart(9)}`);
  lines.push('', `GET /models while users upload public contexts at once (target p99 ≤ ${r.targets.listP99Ms} ms), then concurrent authenticated lists`);
  lines.push(`${'path'.padEnd(10)} ${'uploads ok'.padStart(11)} ${'MB each'.padStart(8)} ${'lists'.padStart(6)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} ${'concurrent'.padStart(11)} ${'failed'.padStart(7)} ${'p99 ms'.padStart(8)}`);
  for (const l of r.load) lines.push(`${l.path.padEnd(10)} ${`${l.uploadsOk}/${l.uploads}`.padStart(11)} ${l.contextMb.toFixed(1).padStart(8)} ${String(l.listRequests).padStart(6)} ${l.listP50Ms.toFixed(1).padStart(8)} ${l.listP99Ms.toFixed(1).padStart(8)} ${l.listMaxMs.toFixed(1).padStart(8)} ${String(l.concurrent).padStart(11)} ${String(l.concurrentFailures).padStart(7)} ${l.concurrentP99Ms.toFixed(1).padStart(8)}`);
  return lines.join('\n');
}
