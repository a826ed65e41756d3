import type { FastifyReply, FastifyRequest } from 'fastify';
import { defences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import { refuseDeclaredBomb } from '../ckks/serialize.ts';
import type { KeyParams } from '../inference/calibrate.ts';
import { inferenceLimits, inferencePaths } from '../inference/service-wire.ts';
import type { InferenceLimits, PublishedModel } from '../inference/service-wire.ts';
import type { HeavyTask } from './heavy.ts';
import { refuseIfJobOpen } from './job-routes.ts';
import { logJob } from './job-log.ts';
import type { ModelRow, Storage, UserRow } from './storage/index.ts';

/** What the inference handlers need from the server (src/service/server.ts). */
export interface InferenceRouteDeps {
  readonly storage: Storage;
  readonly uploadLimit: number;
  auth(req: FastifyRequest): UserRow;
  modelOf(req: FastifyRequest): Promise<ModelRow>;
  member(req: FastifyRequest): Promise<{ user: UserRow; model: ModelRow }>;
  bytesOf(req: FastifyRequest): Uint8Array;
  offload<T>(user: UserRow, task: HeavyTask): Promise<T>;
  launch(jobId: string): void;
}

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
/** A route-level preParsing hook: refuses a declared Content-Length over the model's bound before the body is read. */
type PreParsing = (req: FastifyRequest) => Promise<void>;

/** The model's keyparams, or undefined when it was not deployed for inference. */
async function keyParamsOf(storage: Storage, model: ModelRow): Promise<KeyParams | undefined> {
  const b = await storage.getBlob(model.ownerId, model.id, 'inference_keyparams');
  return b === undefined ? undefined : (JSON.parse(Buffer.from(b).toString('utf8')) as KeyParams);
}

async function needKeyParams(storage: Storage, model: ModelRow): Promise<KeyParams> {
  const kp = await keyParamsOf(storage, model);
  if (kp === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `${model.name}/${model.version} is not deployed for inference (the owner runs cipherml gateway deploy)`, { param: 'model' });
  return kp;
}

function tooLarge(what: string, size: number, limit: number, param: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_PAYLOAD_TOO_LARGE', `${what} of ${size} bytes exceeds the ${limit} bytes this model's keyparams allow`, { param, details: { limit, size } });
}

/**
 * The encrypted-inference handlers, keyed `METHOD url` as in src/service/schemas.ts, and the
 * preParsing hooks that bound the key and ciphertext uploads by the model's keyparams
 * (src/inference/service-wire.ts inferenceLimits) from Content-Length, before the body is read.
 * Every refusal happens before storage is written: a refused upload changes no stored state.
 *
 * @example
 * ```ts
 * const { handlers, preParsing } = inferenceHandlers(deps);
 * ```
 */
export function inferenceHandlers(d: InferenceRouteDeps): { handlers: Map<string, Handler>; preParsing: Map<string, PreParsing> } {
  const { storage } = d;
  const handlers = new Map<string, Handler>();
  const preParsing = new Map<string, PreParsing>();
  const base = '/api/v1/:model/:version';
  const limitsOf = async (req: FastifyRequest): Promise<InferenceLimits> => inferenceLimits(await needKeyParams(storage, await d.modelOf(req)));
  const declared = (req: FastifyRequest): number | undefined => {
    const h = req.headers['content-length'];
    return h === undefined ? undefined : Number(h);
  };
  const published = async (model: ModelRow): Promise<PublishedModel> => {
    const p = inferencePaths(model.name, model.version);
    const kp = await keyParamsOf(storage, model);
    const info = kp === undefined ? undefined : await storage.blobInfo(model.ownerId, model.id, 'inference_model');
    return {
      name: model.name,
      version: model.version,
      modelUrl: p.model,
      inference: kp === undefined || info === undefined ? null : { keyParamsUrl: p.keyParams, calibratedModelUrl: p.calibratedModel, calibratedModelSha256: info.sha256, limits: inferenceLimits(kp) },
    };
  };

  handlers.set(`GET ${base}`, async (req) => {
    d.auth(req);
    return published(await d.modelOf(req));
  });

  handlers.set(`POST ${base}/inference/deploy`, async (req) => {
    const user = d.auth(req);
    const model = await d.modelOf(req);
    if (user.role !== 'owner' || model.ownerId !== user.id) throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', 'only the owner who deployed the model may deploy it for inference', { param: 'role' });
    const n = await storage.countRegistrations(model.id);
    // Registered users hold keys made for the current keyparams: new keyparams would strand them.
    if (n > 0) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `${n} user(s) are registered for ${model.name}/${model.version}; deploy a new version instead`, { param: 'model', details: { registeredUsers: n } });
    const bytes = d.bytesOf(req);
    const r = await d.offload<{ calibrated: Uint8Array; keyParams: string; sha256: string }>(user, { kind: 'calibrate', bytes, maxBytes: d.uploadLimit });
    const kp = JSON.parse(r.keyParams) as KeyParams;
    // The calibrated model is written first: keyparams present means the pair is complete.
    await storage.deleteBlob(model.ownerId, model.id, 'inference_keyparams');
    await storage.putBlob(model.ownerId, model.id, 'inference_model', r.calibrated, r.sha256);
    await storage.putBlob(model.ownerId, model.id, 'inference_keyparams', Buffer.from(r.keyParams, 'utf8'));
    const p = inferencePaths(model.name, model.version);
    return { modelUrl: p.model, keyParamsUrl: p.keyParams, calibratedModelUrl: p.calibratedModel, calibratedModelSha256: r.sha256, depth: kp.depth, polyModulusDegree: kp.params.polyModulusDegree, packing: kp.packing, limits: inferenceLimits(kp) };
  });

  handlers.set(`GET ${base}/inference/keyparams`, async (req, reply) => {
    d.auth(req);
    const model = await d.modelOf(req);
    const b = await storage.getBlob(model.ownerId, model.id, 'inference_keyparams');
    if (b === undefined) await needKeyParams(storage, model);
    return reply.type('application/json; charset=utf-8').send(Buffer.from(b!));
  });

  handlers.set(`GET ${base}/inference/model`, async (req, reply) => {
    d.auth(req);
    const model = await d.modelOf(req);
    await needKeyParams(storage, model);
    const b = await storage.getBlob(model.ownerId, model.id, 'inference_model');
    if (b === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'no calibrated model stored', { param: 'model' });
    return reply.type('application/octet-stream').send(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  });

  preParsing.set(`PUT ${base}/inference/keys`, async (req) => {
    const { model } = await d.member(req);
    const limit = inferenceLimits(await needKeyParams(storage, model)).keysBytes;
    const n = declared(req);
    if (defences.inferenceUploadBounds && n !== undefined && n > limit) throw tooLarge('the evaluation keys', n, limit, 'inference/keys');
  });
  handlers.set(`PUT ${base}/inference/keys`, async (req) => {
    const { user, model } = await d.member(req);
    const kp = await needKeyParams(storage, model);
    const bytes = d.bytesOf(req);
    const limit = inferenceLimits(kp).keysBytes;
    if (defences.inferenceUploadBounds && bytes.length > limit) throw tooLarge('the evaluation keys', bytes.length, limit, 'inference/keys');
    refuseDeclaredBomb(bytes, 'publicKey', 'inference/keys');
    await refuseIfJobOpen(storage, user.id, model.id, 'inference_keys', 'inference/keys');
    const r = await d.offload<{ sha256: string; fingerprint: string }>(user, { kind: 'inferenceKeys', bytes, keyParams: JSON.stringify(kp) });
    const info = await storage.putBlob(user.id, model.id, 'inference_keys', bytes, r.sha256);
    await storage.addUsage(user.id, model.id, 'bytesIn', bytes.length);
    return { stored: 'inference_keys', size: info.size, sha256: info.sha256, fingerprint: r.fingerprint };
  });
  handlers.set(`GET ${base}/inference/keys`, async (req) => {
    const { user, model } = await d.member(req);
    const info = await storage.blobInfo(user.id, model.id, 'inference_keys');
    if (info === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'no evaluation keys stored: PUT …/inference/keys', { param: 'inference/keys' });
    return { size: info.size, sha256: info.sha256, updatedAt: info.updatedAt };
  });

  preParsing.set(`POST ${base}/inference`, async (req) => {
    await d.member(req);
    const limit = (await limitsOf(req)).inputBytes;
    const n = declared(req);
    if (defences.inferenceUploadBounds && n !== undefined && n > limit) throw tooLarge('the encrypted input', n, limit, 'inference');
  });
  handlers.set(`POST ${base}/inference`, async (req, reply) => {
    const { user, model } = await d.member(req);
    const limits = inferenceLimits(await needKeyParams(storage, model));
    const bytes = d.bytesOf(req);
    if (defences.inferenceUploadBounds && bytes.length > limits.inputBytes) throw tooLarge('the encrypted input', bytes.length, limits.inputBytes, 'inference');
    refuseDeclaredBomb(bytes, 'ciphertext', 'inference');
    const keys = await storage.getBlob(user.id, model.id, 'inference_keys');
    if (keys === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'upload the evaluation keys (PUT …/inference/keys) before inference', { param: 'inference/keys' });
    await refuseIfJobOpen(storage, user.id, model.id, 'inference_input', 'inference');
    // Ciphertexts must be made under the uploaded keys: refused here, before any job or blob.
    const { sha256 } = await d.offload<{ sha256: string }>(user, { kind: 'ciphertexts', bytes, publicContext: keys, param: 'inference' });
    await storage.putBlob(user.id, model.id, 'inference_input', bytes, sha256);
    await storage.deleteBlob(user.id, model.id, 'inference_output');
    await storage.addUsage(user.id, model.id, 'bytesIn', bytes.length);
    const job = await storage.createJob(user.id, model.id, 'infer');
    await logJob(storage, job.id, 'queued', `inference job queued: ${bytes.length} bytes of encrypted input`, { state: { ownerId: model.ownerId, inputSha256: sha256 } });
    d.launch(job.id);
    return reply.code(202).send({ jobId: job.id, status: 'queued' });
  });

  handlers.set(`GET ${base}/jobs/:jobId/output`, async (req, reply) => {
    const { user, model } = await d.member(req);
    const { jobId } = req.params as { jobId: string };
    const job = await storage.getJob(jobId);
    if (job === undefined || job.userId !== user.id || job.modelId !== model.id || job.kind !== 'infer') throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no inference job ${jobId} of yours for this model`, { param: 'jobId' });
    if (job.status !== 'succeeded') throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `job ${jobId} is ${job.status}, not succeeded`, { param: 'jobId' });
    const info = await storage.blobInfo(user.id, model.id, 'inference_output');
    const bytes = info === undefined || info.sha256 !== job.figures['outputSha256'] ? undefined : await storage.getBlob(user.id, model.id, 'inference_output');
    if (bytes === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `the output of job ${jobId} was replaced by a later inference`, { param: 'jobId' });
    await storage.addUsage(user.id, model.id, 'bytesOut', bytes.length);
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });
  return { handlers, preParsing };
}
