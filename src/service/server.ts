import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { CipherMLError } from '../core/errors.ts';
import { packageRoot } from '../core/paths.ts';
import { HeavyPool } from './heavy.ts';
import { inferenceHandlers } from './inference-routes.ts';
import type { HeavyTask } from './heavy.ts';
import { createHttpApp } from './http.ts';
import { DEFAULT_REFRESH_TIMEOUT_MS, runFitJobOnThread } from './jobs.ts';
import { cancelJob, jobView, refuseIfJobOpen } from './job-routes.ts';
import { logJob } from './job-log.ts';
import { registerApiDocs } from './docs-ui.ts';
import { naiveReadSections } from './naive.ts';
import { openFitQueue } from './queue.ts';
import { OPENAPI_DOCUMENT, fastifySchema } from './openapi.ts';
import { JSON_BODY_LIMIT, ROUTES } from './schemas.ts';
import type { Profile, RouteSpec } from './schemas.ts';
import { openStorage } from './storage/index.ts';
import type { BlobKind, ModelRow, Storage, UserRow } from './storage/index.ts';
import { validateHyperParams } from '../ml/encrypted-lr.ts';
import { refuseDeclaredBomb } from '../ckks/serialize.ts';
import { registerConsole } from '../console/index.ts';
import type { ConsoleHandle, ConsoleOptions } from '../console/index.ts';
import { openPostgresDriver } from './storage/postgres.ts';
import type { SqlDriver } from './storage/sql.ts';
import { openSqliteDriver } from './storage/sqlite.ts';

/** Options of {@link startService}. */
export interface ServiceOptions {
  readonly dataDir: string;
  readonly db?: string | undefined;
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Largest request body; default 256 MiB. */
  readonly maxBodyBytes?: number;
  /** `redis://…`: fit jobs go to a BullMQ queue for `cipherml serve worker` processes. */
  readonly redis?: string | undefined;
  /** Worker threads for CKKS parsing and prediction (default 2). */
  readonly heavyThreads?: number;
  /** Heavy requests (uploads, predict) one user may have in progress; more get 429 (default 2). */
  readonly heavyPerUser?: number;
  /**
   * Internal test and benchmark hook, never set in production: the service without the issue-13
   * defences (authentication after the body, one global body limit, unbounded JSON, CKKS bodies
   * decompressed to their declared size on the HTTP thread). Adversarial tests and
   * `bench robustness` run the same requests against it to show what the defences change.
   */
  readonly unsafeNaive?: boolean;
  /** PEM certificate chain and private key (`serve --tls-cert/--tls-key`): HTTPS instead of HTTP. */
  readonly tls?: { readonly cert: Uint8Array; readonly key: Uint8Array } | undefined;
  /** How long a fit job waits for the gateway to answer a refresh before it fails with `CIPHERML_E_REFRESH_TIMEOUT` (default 30 minutes). */
  readonly refreshTimeoutMs?: number;
  /** The web console at `/` (src/console): on by default; `false` serves the REST API only. */
  readonly console?: false | Omit<ConsoleOptions, 'db' | 'service'>;
}

/** A running service. */
export interface RunningService {
  readonly url: string;
  readonly storage: Storage;
  /** Resolves when every job started by this process has finished. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

function serviceVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
function sealVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'node_modules', 'node-seal', 'package.json'), 'utf8')) as { version: string }).version;
}

/** The blob kinds a user may upload with PUT and download with GET, by URL segment. */
const UPLOADS: Readonly<Record<string, BlobKind>> = {
  'context/public': 'public_context',
  'context/secret': 'secret_context',
  model: 'model',
  'data/fit': 'train_data',
  'model/trained': 'trained_model',
};

/**
 * Starts the untrusted training service: REST under /api/v1 (see src/service/openapi.ts), bearer
 * tokens, storage in `dataDir` (or PostgreSQL), fit jobs on worker threads. Jobs left running by
 * a previous process are resumed from their last checkpointed epoch.
 *
 * @example
 * ```ts
 * const svc = await startService({ dataDir: 'data', port: 8080 });
 * console.log(svc.url);
 * ```
 */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const storage = await openStorage(options);
  const ref = { dataDir: options.dataDir, db: options.db };
  const uploadLimit = options.maxBodyBytes ?? 256 * 1024 * 1024;
  const naive = options.unsafeNaive === true;
  const app: FastifyInstance = createHttpApp({ bodyLimit: Math.max(uploadLimit, JSON_BODY_LIMIT), naiveJson: naive, tls: options.tls });
  const heavy = new HeavyPool({ threads: options.heavyThreads ?? 2, perUser: options.heavyPerUser ?? 2 });
  const running = new Set<Promise<void>>();
  const workers = new Set<Worker>();
  /** The thread of each job running in this process, so that a cancel stops it at once. */
  const threads = new Map<string, Worker>();
  const refreshTimeoutMs = options.refreshTimeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS;
  if (!Number.isInteger(refreshTimeoutMs) || refreshTimeoutMs < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the refresh timeout must be a positive whole number of milliseconds, got ${refreshTimeoutMs}`, { param: '--refresh-timeout' });
  const queue = options.redis === undefined || options.redis === '' ? undefined : await openFitQueue(options.redis);
  // The console's tables live in the same database, through a connection of its own.
  let consoleDb: SqlDriver | undefined;
  let consoleHandle: ConsoleHandle | undefined;
  if (options.console !== false) {
    consoleDb = options.db !== undefined && options.db !== '' ? await openPostgresDriver(options.db) : openSqliteDriver(options.dataDir);
    consoleHandle = await registerConsole(app, { ...options.console, db: consoleDb, service: storage });
  }
  const launch = (jobId: string): void => {
    if (queue !== undefined) {
      const q: Promise<void> = queue.enqueue(jobId).catch(async (e: unknown) => {
        await storage.updateJob(jobId, { status: 'failed', error: { code: 'CIPHERML_E_PEER_UNAVAILABLE', message: `cannot enqueue: ${(e as Error).message}` } }).catch(() => undefined);
      }).finally(() => running.delete(q));
      running.add(q);
      return;
    }
    const p: Promise<void> = runFitJobOnThread(ref, jobId, (w) => {
      workers.add(w);
      threads.set(jobId, w);
      w.once('exit', () => {
        workers.delete(w);
        if (threads.get(jobId) === w) threads.delete(jobId);
      });
    })
      .catch(async (e: unknown) => {
        await storage.updateJob(jobId, { status: 'failed', error: { code: 'CIPHERML_E_WORKER_FAILED', message: (e as Error).message } }).catch(() => undefined);
      })
      .finally(() => running.delete(p));
    running.add(p);
  };


  // Authentication runs in onRequest, before fastify reads the body: an anonymous caller is
  // answered 401 (and its connection closed) without buffering a byte of what it sends.
  const authenticate = async (req: FastifyRequest): Promise<void> => {
    const h = req.headers.authorization;
    // The web console's browser app calls the API with its session cookie (and CSRF token) instead of a bearer token.
    if (h === undefined && consoleHandle !== undefined) {
      const viaSession = await consoleHandle.sessionUser(req);
      const row = viaSession === undefined ? undefined : await storage.getUser(viaSession.name);
      if (row !== undefined) return void users.set(req, row);
    }
    const m = typeof h === 'string' && h.length <= 512 ? /^Bearer (\S+)$/.exec(h) : null;
    if (m === null) throw new CipherMLError('CIPHERML_E_SERVICE_UNAUTHENTICATED', 'missing bearer token', { param: 'Authorization' });
    const user = await storage.authenticate(m[1]!);
    if (user === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_UNAUTHENTICATED', 'unknown, expired or revoked token', { param: 'Authorization' });
    users.set(req, user);
  };
  const users = new WeakMap<FastifyRequest, UserRow>();
  const auth = (req: FastifyRequest): UserRow => {
    const u = users.get(req);
    if (u === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_UNAUTHENTICATED', 'missing bearer token', { param: 'Authorization' });
    return u;
  };
  const modelOf = async (req: FastifyRequest): Promise<ModelRow> => {
    const { model, version } = req.params as { model: string; version: string };
    const row = await storage.getModel(model, version);
    if (row === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `model ${model}/${version} is not deployed`, { param: 'model' });
    return row;
  };
  /** A registered user of the model in the URL. */
  const member = async (req: FastifyRequest): Promise<{ user: UserRow; model: ModelRow }> => {
    const user = auth(req);
    const model = await modelOf(req);
    if (!(await storage.isRegistered(user.id, model.id))) throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', `user ${user.name} is not registered for ${model.name}/${model.version}`, { param: 'model' });
    return { user, model };
  };
  const bytesOf = (req: FastifyRequest): Uint8Array => {
    if (!Buffer.isBuffer(req.body)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'send the bytes with Content-Type: application/octet-stream', { param: 'body' });
    return new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength);
  };
  /** Heavy steps on the worker pool; the naive baseline runs them on this thread, unbounded. */
  const offload = async <T>(user: UserRow, task: HeavyTask): Promise<T> => {
    if (!naive) return heavy.run<T>(user.id, task);
    if (task.kind === 'publicContext' || task.kind === 'predict') naiveReadSections(task.bytes, task.kind === 'predict' ? 'ciphertext' : 'publicKey');
    const { runHeavyTask } = await import('./heavy-task.ts');
    return (await runHeavyTask(task)) as T;
  };

  type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  const handlers = new Map<string, Handler>();
  const on = (method: RouteSpec['method'], url: string, h: Handler): void => void handlers.set(`${method} ${url}`, h);
  const base = '/api/v1/:model/:version';

  on('GET', '/api/v1/openapi.json', async (_req, reply) => reply.type('application/json; charset=utf-8').send(JSON.stringify(OPENAPI_DOCUMENT)));
  on('GET', '/health', async () => ({ status: 'ok' }));
  on('GET', '/api/v1/whoami', async (req) => {
    const user = auth(req);
    return { user: user.name, role: user.role };
  });
  on('GET', '/api/v1/info/version', async () => ({ service: 'cipherml', version: serviceVersion(), heLibrary: `node-seal ${sealVersion()} (Microsoft SEAL)`, scheme: 'CKKS', storage: storage.backend }));
  on('GET', '/api/v1/models', async () => ({ models: (await storage.listModels()).map((m) => ({ name: m.name, version: m.version, url: `/api/v1/${m.name}/${m.version}` })) }));
  on('GET', '/api/v1/jobs', async (req) => {
    const user = auth(req);
    const models = [];
    for (const m of await storage.listModels()) {
      if (!(await storage.isRegistered(user.id, m.id))) continue;
      models.push({ name: m.name, version: m.version, jobs: (await storage.listJobs({ userId: user.id, modelId: m.id })).map(jobView) });
    }
    return { models };
  });
  on('POST', `${base}/deploy_model`, async (req) => {
    const user = auth(req);
    if (user.role !== 'owner') throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', 'deploying a model needs the owner role', { param: 'role' });
    const { model, version } = req.params as { model: string; version: string };
    const row = await storage.deployModel(user.id, model, version);
    return { modelUrl: `/api/v1/${row.name}/${row.version}` };
  });
  on('DELETE', `${base}/undeploy_model`, async (req) => {
    const user = auth(req);
    const model = await modelOf(req);
    if (user.role !== 'owner' || model.ownerId !== user.id) throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', 'only the owner who deployed the model may undeploy it', { param: 'role' });
    const n = await storage.countRegistrations(model.id);
    if (n > 0) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `${n} user(s) are registered for ${model.name}/${model.version}; they must unregister first`, { param: 'model', details: { registeredUsers: n } });
    // The published calibrated model and keyparams are the owner's blobs of this model.
    for (const kind of ['inference_model', 'inference_keyparams'] as const) await storage.deleteBlob(model.ownerId, model.id, kind);
    await storage.deleteModel(model.id);
    return { undeployed: true };
  });
  on('POST', `${base}/application/register_user`, async (req) => {
    const user = auth(req);
    const model = await modelOf(req);
    return { registered: true, new: await storage.register(user.id, model.id) };
  });
  on('DELETE', `${base}/application/unregister_user`, async (req) => {
    const { user, model } = await member(req);
    const active = await storage.listJobs({ userId: user.id, modelId: model.id, status: ['queued', 'running', 'awaiting_refresh'] });
    if (active.length > 0) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `job ${active[0]!.id} is still ${active[0]!.status}`, { param: 'jobId' });
    await storage.unregister(user.id, model.id);
    return { unregistered: true };
  });
  on('POST', `${base}/add_profile`, async (req) => {
    const { user, model } = await member(req);
    // Validated against the closed Profile schema before this handler runs.
    const body = req.body as Static<typeof Profile>;
    await storage.setProfile(user.id, model.id, body);
    return { profile: body };
  });
  for (const [segment, kind] of Object.entries(UPLOADS)) {
    on('PUT', `${base}/${segment}`, async (req) => {
      const { user, model } = await member(req);
      const bytes = bytesOf(req);
      // Checked before the upload is parsed and again just before it is stored.
      await refuseIfJobOpen(storage, user.id, model.id, kind, segment);
      let hashed: { sha256: string };
      if (kind === 'public_context') {
        // A declared bomb is refused from its header here, before the copy to a worker thread.
        if (!naive) refuseDeclaredBomb(bytes, 'publicKey', 'context/public');
        hashed = await offload(user, { kind: 'publicContext', bytes, param: 'context/public' });
      }
      else if (kind === 'secret_context') hashed = await offload(user, { kind: 'sha256', bytes });
      else {
        // Ciphertexts must be made under this user's public context: refused here, before any job.
        const pub = await storage.getBlob(user.id, model.id, 'public_context');
        if (pub === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'upload the public context before ciphertexts', { param: 'context/public' });
        hashed = await offload(user, { kind: 'ciphertexts', bytes, publicContext: pub, param: segment });
      }
      await refuseIfJobOpen(storage, user.id, model.id, kind, segment);
      const info = await storage.putBlob(user.id, model.id, kind, bytes, hashed.sha256);
      await storage.addUsage(user.id, model.id, 'bytesIn', bytes.length);
      return { stored: kind, size: info.size, sha256: info.sha256 };
    });
    on('GET', `${base}/${segment}`, async (req, reply) => {
      const { user, model } = await member(req);
      const bytes = await storage.getBlob(user.id, model.id, kind);
      if (bytes === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no ${kind} stored`, { param: segment });
      await storage.addUsage(user.id, model.id, 'bytesOut', bytes.length);
      return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    });
  }
  on('POST', `${base}/fit`, async (req, reply) => {
    const { user, model } = await member(req);
    const hyper = validateHyperParams(req.body);
    for (const k of ['public_context', 'model', 'train_data'] as const) {
      if ((await storage.blobInfo(user.id, model.id, k)) === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `upload the ${k} before fit`, { param: k });
    }
    const active = await storage.listJobs({ userId: user.id, modelId: model.id, status: ['queued', 'running', 'awaiting_refresh'] });
    if (active.length > 0) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `job ${active[0]!.id} is still ${active[0]!.status}`, { param: 'jobId' });
    const job = await storage.createJob(user.id, model.id, 'fit');
    await logJob(storage, job.id, 'queued', `fit job queued: ${hyper.numberOfEpochs} epochs, ${hyper.numberOfFeatures} features`, { state: { hyper, refreshTimeoutMs } });
    launch(job.id);
    return reply.code(202).send({ jobId: job.id, status: 'queued' });
  });
  const jobOf = async (req: FastifyRequest): Promise<{ user: UserRow; model: ModelRow; jobId: string }> => {
    const { user, model } = await member(req);
    const { jobId } = req.params as { jobId: string };
    const job = await storage.getJob(jobId);
    if (job === undefined || job.userId !== user.id || job.modelId !== model.id) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no job ${jobId} of yours for this model`, { param: 'jobId' });
    return { user, model, jobId };
  };
  on('GET', `${base}/jobs/:jobId`, async (req) => {
    const { jobId } = await jobOf(req);
    return jobView((await storage.getJob(jobId))!);
  });
  on('GET', `${base}/jobs`, async (req) => {
    const { user, model } = await member(req);
    return { jobs: (await storage.listJobs({ userId: user.id, modelId: model.id })).map(jobView) };
  });
  on('POST', `${base}/jobs/:jobId/cancel`, async (req) => {
    const { jobId } = await jobOf(req);
    return jobView(await cancelJob(storage, jobId, threads.get(jobId)));
  });
  on('GET', `${base}/jobs/:jobId/refresh`, async (req, reply) => {
    const { user, model } = await jobOf(req);
    const bytes = await storage.getBlob(user.id, model.id, 'refresh_request');
    if (bytes === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'the job is not waiting for a refresh', { param: 'jobId' });
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });
  on('PUT', `${base}/jobs/:jobId/refresh`, async (req) => {
    const { user, model, jobId } = await jobOf(req);
    const bytes = bytesOf(req);
    if ((await storage.getJob(jobId))?.status !== 'awaiting_refresh') throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', 'the job is not waiting for a refresh', { param: 'jobId' });
    if ((await storage.blobInfo(user.id, model.id, 'refresh_request')) === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', 'this refresh was already answered', { param: 'jobId' });
    const { sha256 } = await offload<{ sha256: string }>(user, { kind: 'sha256', bytes });
    await storage.putBlob(user.id, model.id, 'refresh_reply', bytes, sha256);
    // The request is answered: a second GET must not hand out the same weights again.
    await storage.deleteBlob(user.id, model.id, 'refresh_request');
    return { accepted: true };
  });
  on('POST', `${base}/predict`, async (req, reply) => {
    const { user, model } = await member(req);
    const bytes = bytesOf(req);
    // Refused from its header before the user's model and key set are read from storage.
    if (!naive) refuseDeclaredBomb(bytes, 'ciphertext', 'predict');
    const trained = await storage.getBlob(user.id, model.id, 'trained_model');
    const pub = await storage.getBlob(user.id, model.id, 'public_context');
    if (trained === undefined || pub === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'fit a model (and upload the public context) before predict', { param: 'model' });
    const { features } = req.query as { features: number };
    const { scores, ms } = await offload<{ scores: Uint8Array; ms: number }>(user, { kind: 'predict', bytes, publicContext: pub, trained, features });
    await storage.addUsage(user.id, model.id, 'predictMs', ms);
    await storage.addUsage(user.id, model.id, 'predictCalls', 1);
    return reply.type('application/octet-stream').send(Buffer.from(scores.buffer, scores.byteOffset, scores.byteLength));
  });
  on('GET', `${base}/usage`, async (req) => {
    const { user, model } = await member(req);
    return { usage: await storage.getUsage(user.id, model.id) };
  });

  const inference = inferenceHandlers({ storage, uploadLimit, auth, modelOf, member, bytesOf, offload, launch });
  for (const [k, h] of inference.handlers) handlers.set(k, h);
  await registerApiDocs(app);
  for (const spec of ROUTES) {
    const handler = handlers.get(`${spec.method} ${spec.url}`);
    const pre = naive ? undefined : inference.preParsing.get(`${spec.method} ${spec.url}`);
    if (handler === undefined) throw new Error(`no handler for ${spec.method} ${spec.url}`);
    app.route({
      method: spec.method,
      url: spec.url,
      bodyLimit: naive ? Math.max(uploadLimit, JSON_BODY_LIMIT) : spec.bodyLimit === 'upload' ? uploadLimit : spec.bodyLimit,
      schema: fastifySchema(spec, naive),
      ...(spec.auth ? (naive ? { preHandler: authenticate } : { onRequest: authenticate }) : {}),
      ...(pre === undefined ? {} : { preParsing: async (req: FastifyRequest, _reply: FastifyReply, payload: unknown) => (await pre(req), payload) }),
      handler,
    });
  }

  // Jobs a previous process left behind resume from their last checkpointed epoch.
  for (const j of await storage.listJobs({ status: ['queued', 'running', 'awaiting_refresh'] })) {
    if ((j.kind === 'fit' && j.state['hyper'] !== undefined) || j.kind === 'infer') launch(j.id);
    else await storage.updateJob(j.id, { status: 'failed', error: { code: 'CIPHERML_E_JOB_FAILED', message: 'interrupted by a service restart and not resumable' } });
  }

  const address = await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  return {
    url: address,
    storage,
    idle: async () => {
      while (running.size > 0) await Promise.all([...running]);
    },
    close: async () => {
      await app.close();
      await heavy.close();
      // Unfinished jobs stay running/awaiting_refresh in storage and resume on the next start.
      await Promise.all([...workers].map((w) => w.terminate()));
      await Promise.all([...running]);
      await queue?.close();
      await consoleDb?.close();
      await storage.close();
    },
  };
}
