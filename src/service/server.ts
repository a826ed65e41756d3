import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CipherMLError, isCipherMLError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';
import { openEnvelope } from '../core/envelope.ts';
import { packageRoot } from '../core/paths.ts';
import { deserializePublicContext } from '../ckks/index.ts';
import { runFitJobOnThread } from './jobs.ts';
import { openFitQueue } from './queue.ts';
import { OPENAPI_DOCUMENT, docsPage } from './openapi.ts';
import { openStorage } from './storage/index.ts';
import type { BlobKind, ModelRow, Storage, UserRow } from './storage/index.ts';
import { predictEncrypted, validateHyperParams } from '../ml/encrypted-lr.ts';

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
}

/** A running service. */
export interface RunningService {
  readonly url: string;
  readonly storage: Storage;
  /** Resolves when every job started by this process has finished. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  CIPHERML_E_SERVICE_UNAUTHENTICATED: 401,
  CIPHERML_E_SERVICE_FORBIDDEN: 403,
  CIPHERML_E_SERVICE_NOT_FOUND: 404,
  CIPHERML_E_SERVICE_CONFLICT: 409,
  CIPHERML_E_PAYLOAD_TOO_LARGE: 413,
  CIPHERML_E_STORAGE: 500,
  CIPHERML_E_WORKER_FAILED: 500,
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

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
  const app: FastifyInstance = Fastify({ bodyLimit: options.maxBodyBytes ?? 256 * 1024 * 1024 });
  const running = new Set<Promise<void>>();
  const workers = new Set<Worker>();
  const queue = options.redis === undefined || options.redis === '' ? undefined : await openFitQueue(options.redis);
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
      w.once('exit', () => workers.delete(w));
    })
      .catch(async (e: unknown) => {
        await storage.updateJob(jobId, { status: 'failed', error: { code: 'CIPHERML_E_WORKER_FAILED', message: (e as Error).message } }).catch(() => undefined);
      })
      .finally(() => running.delete(p));
    running.add(p);
  };

  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((error: unknown, _req: FastifyRequest, reply: FastifyReply) => {
    let e: CipherMLError;
    const fe = error as { code?: string; statusCode?: number; message?: string };
    if (isCipherMLError(error)) e = error;
    else if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new CipherMLError('CIPHERML_E_PAYLOAD_TOO_LARGE', 'the request body exceeds the size limit', { param: 'body' });
    else if (fe.statusCode !== undefined && fe.statusCode < 500) e = new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', fe.message ?? 'bad request', { param: 'body' });
    else e = new CipherMLError('CIPHERML_E_STORAGE', fe.message ?? 'internal error', { param: 'service' });
    void reply.code(STATUS[e.code] ?? 400).send({ error: e.toJSON() });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no route ${req.method} ${req.url}`, { param: 'url' }).toJSON() });
  });

  const auth = async (req: FastifyRequest): Promise<UserRow> => {
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer (\S+)$/.exec(h) : null;
    if (m === null) throw new CipherMLError('CIPHERML_E_SERVICE_UNAUTHENTICATED', 'missing bearer token', { param: 'Authorization' });
    const user = await storage.authenticate(m[1]!);
    if (user === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_UNAUTHENTICATED', 'unknown token', { param: 'Authorization' });
    return user;
  };
  const modelOf = async (req: FastifyRequest): Promise<ModelRow> => {
    const { model, version } = req.params as { model: string; version: string };
    const row = await storage.getModel(model, version);
    if (row === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `model ${model}/${version} is not deployed`, { param: 'model' });
    return row;
  };
  /** A registered user of the model in the URL. */
  const member = async (req: FastifyRequest): Promise<{ user: UserRow; model: ModelRow }> => {
    const user = await auth(req);
    const model = await modelOf(req);
    if (!(await storage.isRegistered(user.id, model.id))) throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', `user ${user.name} is not registered for ${model.name}/${model.version}`, { param: 'model' });
    return { user, model };
  };
  const bytesOf = (req: FastifyRequest): Uint8Array => {
    if (!Buffer.isBuffer(req.body)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'send the bytes with Content-Type: application/octet-stream', { param: 'body' });
    return new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength);
  };

  app.get('/api/v1/openapi.json', async () => OPENAPI_DOCUMENT);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(docsPage()));
  app.get('/api/v1/info/version', async (req) => {
    await auth(req);
    return { service: 'cipherml', version: serviceVersion(), heLibrary: `node-seal ${sealVersion()} (Microsoft SEAL)`, scheme: 'CKKS', storage: storage.backend };
  });
  app.get('/api/v1/models', async (req) => {
    await auth(req);
    return { models: (await storage.listModels()).map((m) => ({ name: m.name, version: m.version, url: `/api/v1/${m.name}/${m.version}` })) };
  });
  app.post('/api/v1/:model/:version/deploy_model', async (req) => {
    const user = await auth(req);
    if (user.role !== 'owner') throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', 'deploying a model needs the owner role', { param: 'role' });
    const { model, version } = req.params as { model: string; version: string };
    if (!NAME.test(model) || !NAME.test(version)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'model and version are 1–64 letters, digits, ".", "_" or "-"', { param: 'model' });
    const row = await storage.deployModel(user.id, model, version);
    return { modelUrl: `/api/v1/${row.name}/${row.version}` };
  });
  app.delete('/api/v1/:model/:version/undeploy_model', async (req) => {
    const user = await auth(req);
    const model = await modelOf(req);
    if (user.role !== 'owner' || model.ownerId !== user.id) throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', 'only the owner who deployed the model may undeploy it', { param: 'role' });
    const n = await storage.countRegistrations(model.id);
    if (n > 0) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `${n} user(s) are registered for ${model.name}/${model.version}; they must unregister first`, { param: 'model', details: { registeredUsers: n } });
    await storage.deleteModel(model.id);
    return { undeployed: true };
  });
  app.post('/api/v1/:model/:version/application/register_user', async (req) => {
    const user = await auth(req);
    const model = await modelOf(req);
    return { registered: true, new: await storage.register(user.id, model.id) };
  });
  app.delete('/api/v1/:model/:version/application/unregister_user', async (req) => {
    const { user, model } = await member(req);
    const active = await storage.listJobs({ userId: user.id, modelId: model.id, status: ['queued', 'running', 'awaiting_refresh'] });
    if (active.length > 0) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `job ${active[0]!.id} is still ${active[0]!.status}`, { param: 'jobId' });
    await storage.unregister(user.id, model.id);
    return { unregistered: true };
  });
  app.post('/api/v1/:model/:version/add_profile', async (req) => {
    const { user, model } = await member(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const batchSize = body['batchSize'];
    if (batchSize !== undefined && (typeof batchSize !== 'number' || !Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1 << 20)) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `batchSize must be an integer in [1, 1048576], got ${JSON.stringify(batchSize)}`, { param: 'batchSize' });
    }
    await storage.setProfile(user.id, model.id, body);
    return { profile: body };
  });
  for (const [segment, kind] of Object.entries(UPLOADS)) {
    app.put(`/api/v1/:model/:version/${segment}`, async (req) => {
      const { user, model } = await member(req);
      const bytes = bytesOf(req);
      if (kind === 'public_context') (await deserializePublicContext(bytes, 'publicContext')).delete();
      else if (kind !== 'secret_context') {
        // Ciphertexts must be made under this user's public context: rejected here, before any job.
        const env = openEnvelope(bytes, { kind: 'ciphertext', scheme: 'ckks' }, segment);
        const pub = await storage.getBlob(user.id, model.id, 'public_context');
        if (pub === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'upload the public context before ciphertexts', { param: 'context/public' });
        const expected = openEnvelope(pub, { kind: 'publicKey', scheme: 'ckks' }, 'context/public').fingerprint;
        if (env.fingerprint !== expected) {
          throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the ciphertexts were made under key set ${env.fingerprint}, the uploaded public context is ${expected}`, { param: segment, details: { expected, actual: env.fingerprint } });
        }
      }
      const info = await storage.putBlob(user.id, model.id, kind, bytes);
      await storage.addUsage(user.id, model.id, 'bytesIn', bytes.length);
      return { stored: kind, size: info.size, sha256: info.sha256 };
    });
    app.get(`/api/v1/:model/:version/${segment}`, async (req, reply) => {
      const { user, model } = await member(req);
      const bytes = await storage.getBlob(user.id, model.id, kind);
      if (bytes === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no ${kind} stored`, { param: segment });
      await storage.addUsage(user.id, model.id, 'bytesOut', bytes.length);
      return reply.type('application/octet-stream').send(Buffer.from(bytes));
    });
  }
  app.post('/api/v1/:model/:version/fit', async (req, reply) => {
    const { user, model } = await member(req);
    const hyper = validateHyperParams(req.body);
    for (const k of ['public_context', 'model', 'train_data'] as const) {
      if ((await storage.blobInfo(user.id, model.id, k)) === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `upload the ${k} before fit`, { param: k });
    }
    const active = await storage.listJobs({ userId: user.id, modelId: model.id, status: ['queued', 'running', 'awaiting_refresh'] });
    if (active.length > 0) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `job ${active[0]!.id} is still ${active[0]!.status}`, { param: 'jobId' });
    const job = await storage.createJob(user.id, model.id, 'fit');
    await storage.updateJob(job.id, { state: { hyper } });
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
  app.get('/api/v1/:model/:version/jobs/:jobId', async (req) => {
    const { jobId } = await jobOf(req);
    const j = (await storage.getJob(jobId))!;
    return { jobId: j.id, status: j.status, progress: j.progress, error: j.error, figures: j.figures, createdAt: j.createdAt, updatedAt: j.updatedAt };
  });
  app.get('/api/v1/:model/:version/jobs/:jobId/refresh', async (req, reply) => {
    const { user, model } = await jobOf(req);
    const bytes = await storage.getBlob(user.id, model.id, 'refresh_request');
    if (bytes === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'the job is not waiting for a refresh', { param: 'jobId' });
    return reply.type('application/octet-stream').send(Buffer.from(bytes));
  });
  app.put('/api/v1/:model/:version/jobs/:jobId/refresh', async (req) => {
    const { user, model, jobId } = await jobOf(req);
    if ((await storage.getJob(jobId))?.status !== 'awaiting_refresh') throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', 'the job is not waiting for a refresh', { param: 'jobId' });
    if ((await storage.blobInfo(user.id, model.id, 'refresh_request')) === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', 'this refresh was already answered', { param: 'jobId' });
    await storage.putBlob(user.id, model.id, 'refresh_reply', bytesOf(req));
    // The request is answered: a second GET must not hand out the same weights again.
    await storage.deleteBlob(user.id, model.id, 'refresh_request');
    return { accepted: true };
  });
  app.post('/api/v1/:model/:version/predict', async (req, reply) => {
    const { user, model } = await member(req);
    const bytes = bytesOf(req);
    const trained = await storage.getBlob(user.id, model.id, 'trained_model');
    const pub = await storage.getBlob(user.id, model.id, 'public_context');
    if (trained === undefined || pub === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'fit a model (and upload the public context) before predict', { param: 'model' });
    const features = Number((req.query as Record<string, string>)['features'] ?? NaN);
    const ctx = await deserializePublicContext(pub, 'publicContext');
    try {
      const t0 = performance.now();
      const scores = predictEncrypted(ctx, trained, bytes, features);
      await storage.addUsage(user.id, model.id, 'predictMs', performance.now() - t0);
      await storage.addUsage(user.id, model.id, 'predictCalls', 1);
      return reply.type('application/octet-stream').send(Buffer.from(scores));
    } finally {
      ctx.delete();
    }
  });
  app.get('/api/v1/:model/:version/usage', async (req) => {
    const { user, model } = await member(req);
    return { usage: await storage.getUsage(user.id, model.id) };
  });

  // Jobs a previous process left behind resume from their last checkpointed epoch.
  for (const j of await storage.listJobs({ status: ['queued', 'running', 'awaiting_refresh'] })) {
    if (j.kind === 'fit' && j.state['hyper'] !== undefined) launch(j.id);
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
      // Unfinished jobs stay running/awaiting_refresh in storage and resume on the next start.
      await Promise.all([...workers].map((w) => w.terminate()));
      await Promise.all([...running]);
      await queue?.close();
      await storage.close();
    },
  };
}
