import { Type } from 'typebox';
import type { TInteger, TObject, TOptional, TSchema } from 'typebox';
import { JOB_STATUSES } from './storage/index.ts';

/**
 * Every route of the service as data: method, path, who may call it, its body limit and the
 * TypeBox schemas of its parameters, body and every response. Fastify validates requests and
 * serializes responses with these schemas, and the OpenAPI document (src/service/openapi.ts) is
 * generated from the same table, so what is documented is what is enforced.
 */

/** The one error body of the service: a typed cipherml error (src/core/errors.ts). */
export const ErrorBody: TSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ pattern: '^CIPHERML_E_[A-Z_]+$', examples: ['CIPHERML_E_SERVICE_NOT_FOUND'] }),
      message: Type.String(),
      param: Type.Optional(Type.String()),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'Error' },
);

/** Model and version names: what deploy_model accepts, and nothing longer reaches storage. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const Name = Type.String({ pattern: NAME_PATTERN, maxLength: 64 });
const ModelParams = Type.Object({ model: Name, version: Name });
const JobParams = Type.Object({ model: Name, version: Name, jobId: Type.String({ pattern: '^[0-9a-f-]{36}$' }) });

/**
 * A stored profile (requirements). Closed: unknown keys are refused, so the service never stores
 * and echoes arbitrary JSON.
 */
export const Profile: TObject<{ batchSize: TOptional<TInteger> }> = Type.Object({ batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })) }, { additionalProperties: false });

/** Fit hyper-parameters (validated again by validateHyperParams with typed errors). */
export const HyperParams: TSchema = Type.Object(
  {
    numberOfEpochs: Type.Integer({ minimum: 1, maximum: 100 }),
    learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 10 }),
    numberOfFeatures: Type.Integer({ minimum: 1, maximum: 4096 }),
    logisticRegressionActivation: Type.Optional(Type.Literal('sigmoid_poly_3_approximation')),
  },
  { additionalProperties: false },
);

const JobError = Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]);
/** A job as GET …/jobs/{jobId} returns it. */
export const Job: TSchema = Type.Object({
  jobId: Type.String(),
  kind: Type.Union([Type.Literal('fit'), Type.Literal('predict'), Type.Literal('infer')]),
  status: Type.Union(JOB_STATUSES.map((s) => Type.Literal(s))),
  progress: Type.Number({ minimum: 0, maximum: 1 }),
  error: JobError,
  figures: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
});

const Stored = Type.Object({ stored: Type.String(), size: Type.Integer({ minimum: 0 }), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) });

/** How a route's body is read. */
export type BodyKind = 'none' | 'json' | 'binary';

/** One route of the service. */
export interface RouteSpec {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Fastify path (`:param`). */
  readonly url: string;
  readonly summary: string;
  /** Needs a bearer token (checked in onRequest, before the body is read). */
  readonly auth: boolean;
  readonly body: BodyKind;
  /** Largest body accepted, in bytes; `upload` means the service's --max-body-mb. */
  readonly bodyLimit: number | 'upload';
  readonly params?: TSchema;
  readonly querystring?: TSchema;
  readonly jsonBody?: TSchema;
  /** Success status and body schema (`binary` for application/octet-stream). */
  readonly ok: { readonly status: 200 | 202; readonly schema: TSchema | 'binary' | 'html' };
  /** Heavy work (CKKS deserialization, prediction): runs on the worker pool, bounded per user. */
  readonly heavy?: boolean;
}

/** Largest JSON body of any route (profiles and hyper-parameters are a few hundred bytes). */
export const JSON_BODY_LIMIT: number = 64 << 10;
/** Deepest JSON nesting accepted in a body. */
export const JSON_MAX_DEPTH = 16;
/** Body limit of routes that take no body. */
export const EMPTY_BODY_LIMIT = 1024;

const base = '/api/v1/:model/:version';
const uploads: readonly [string, string][] = [
  ['context/public', 'the public CKKS context (parameters, public, relinearization and Galois keys)'],
  ['context/secret', "the gateway's passphrase-encrypted secret context (opaque)"],
  ['model', 'the encrypted initial model (bias and coefficients)'],
  ['data/fit', 'the encrypted training data (column-packed features and labels)'],
  ['model/trained', 'the encrypted trained model'],
];

const Limits = Type.Object({ keysBytes: Type.Integer({ minimum: 1 }), inputBytes: Type.Integer({ minimum: 1 }), maxCiphertexts: Type.Integer({ minimum: 1 }) });
/** A deployed model as its URL describes it (src/inference/service-wire.ts PublishedModel). */
export const PublishedModelSchema: TSchema = Type.Object({
  name: Type.String(),
  version: Type.String(),
  modelUrl: Type.String(),
  inference: Type.Union([Type.Object({ keyParamsUrl: Type.String(), calibratedModelUrl: Type.String(), calibratedModelSha256: Type.String({ pattern: '^[0-9a-f]{64}$' }), limits: Limits }), Type.Null()]),
});
const Queued = Type.Object({ jobId: Type.String(), status: Type.Literal('queued') });

/** The encrypted-inference routes (HE-MAN on the service; src/service/inference-routes.ts). */
const INFERENCE_ROUTES: readonly RouteSpec[] = [
  { method: 'GET', url: base, summary: 'The model URL: the deployed model and, once deployed for inference, where its keyparams and calibrated model are', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: PublishedModelSchema } },
  {
    method: 'POST', url: `${base}/inference/deploy`, summary: 'Deploy an ONNX model for encrypted inference (owner who deployed the model): a ZIP of model.onnx and calibration.npz; runs he keyparams on a worker thread; 409 while users are registered', auth: true, body: 'binary', bodyLimit: 'upload', params: ModelParams, heavy: true,
    ok: { status: 200, schema: Type.Object({ modelUrl: Type.String(), keyParamsUrl: Type.String(), calibratedModelUrl: Type.String(), calibratedModelSha256: Type.String(), depth: Type.Integer(), polyModulusDegree: Type.Integer(), packing: Type.String(), limits: Limits }) },
  },
  { method: 'GET', url: `${base}/inference/keyparams`, summary: 'The keyparams of the calibrated model (make keys with these: he keygen)', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: Type.Object({ format: Type.Literal('cipherml-he-keyparams') }, { additionalProperties: true }) } },
  { method: 'GET', url: `${base}/inference/model`, summary: 'The calibrated ONNX model (polynomial activations) the service evaluates', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: 'binary' } },
  { method: 'PUT', url: `${base}/inference/keys`, summary: "Upload the caller's evaluation keys (key.pub of he keygen) once; bounded by the keyparams' key size", auth: true, body: 'binary', bodyLimit: 'upload', params: ModelParams, heavy: true, ok: { status: 200, schema: Type.Object({ stored: Type.Literal('inference_keys'), size: Type.Integer({ minimum: 0 }), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }), fingerprint: Type.String() }) } },
  { method: 'GET', url: `${base}/inference/keys`, summary: "Size and SHA-256 of the caller's stored evaluation keys (the gateway uploads only when they differ)", auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: Type.Object({ size: Type.Integer({ minimum: 0 }), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }), updatedAt: Type.Integer() }) } },
  { method: 'POST', url: `${base}/inference`, summary: 'Start an encrypted-inference job on ciphertexts made by he encrypt under the uploaded keys; bounded by the keyparams', auth: true, body: 'binary', bodyLimit: 'upload', params: ModelParams, heavy: true, ok: { status: 202, schema: Queued } },
  { method: 'GET', url: `${base}/jobs/:jobId/output`, summary: 'The encrypted output of a succeeded inference job (decrypt on the trusted side: he decrypt)', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: JobParams, ok: { status: 200, schema: 'binary' } },
];

/** Every route the service answers. */
export const ROUTES: readonly RouteSpec[] = [
  { method: 'GET', url: '/api/v1/openapi.json', summary: 'This OpenAPI document', auth: false, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, ok: { status: 200, schema: Type.Object({ openapi: Type.String() }, { additionalProperties: true }) } },
  { method: 'GET', url: '/health', summary: 'Liveness: answers while the process serves HTTP (no token needed)', auth: false, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, ok: { status: 200, schema: Type.Object({ status: Type.Literal('ok') }) } },
  { method: 'GET', url: '/api/v1/whoami', summary: 'The calling user and role (the gateway binds its sealed secret key to the user)', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, ok: { status: 200, schema: Type.Object({ user: Type.String(), role: Type.Union([Type.Literal('owner'), Type.Literal('user')]) }) } },
  {
    method: 'GET', url: '/api/v1/info/version', summary: 'Service and HE library versions, scheme (no token needed)', auth: false, body: 'none', bodyLimit: EMPTY_BODY_LIMIT,
    ok: { status: 200, schema: Type.Object({ service: Type.Literal('cipherml'), version: Type.String(), heLibrary: Type.String(), scheme: Type.Literal('CKKS'), storage: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')]) }) },
  },
  {
    method: 'GET', url: '/api/v1/models', summary: 'List deployed models', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT,
    ok: { status: 200, schema: Type.Object({ models: Type.Array(Type.Object({ name: Type.String(), version: Type.String(), url: Type.String() })) }) },
  },
  {
    method: 'GET', url: '/api/v1/jobs', summary: "The calling user's jobs of every model they are registered for, grouped by model, oldest first (the console's Jobs page)", auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT,
    ok: { status: 200, schema: Type.Object({ models: Type.Array(Type.Object({ name: Type.String(), version: Type.String(), jobs: Type.Array(Job) })) }) },
  },
  { method: 'POST', url: `${base}/deploy_model`, summary: 'Deploy a model (owner role); 409 when another owner deployed it', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: Type.Object({ modelUrl: Type.String() }) } },
  { method: 'DELETE', url: `${base}/undeploy_model`, summary: 'Undeploy (owner who deployed it); 409 while users are registered', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: Type.Object({ undeployed: Type.Literal(true) }) } },
  { method: 'POST', url: `${base}/application/register_user`, summary: 'Register the calling user for the model', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: Type.Object({ registered: Type.Literal(true), new: Type.Boolean() }) } },
  { method: 'DELETE', url: `${base}/application/unregister_user`, summary: "Unregister; deletes the user's keys, data, models, jobs and usage for this model", auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: Type.Object({ unregistered: Type.Literal(true) }) } },
  { method: 'POST', url: `${base}/add_profile`, summary: 'Store requirements (batchSize); unknown keys are refused', auth: true, body: 'json', bodyLimit: JSON_BODY_LIMIT, params: ModelParams, jsonBody: Profile, ok: { status: 200, schema: Type.Object({ profile: Profile }) } },
  ...uploads.flatMap(([segment, what]): RouteSpec[] => [
    { method: 'PUT', url: `${base}/${segment}`, summary: `Upload ${what}`, auth: true, body: 'binary', bodyLimit: 'upload', params: ModelParams, ok: { status: 200, schema: Stored }, heavy: true },
    { method: 'GET', url: `${base}/${segment}`, summary: `Download ${what}`, auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: 'binary' } },
  ]),
  { method: 'POST', url: `${base}/fit`, summary: 'Start an asynchronous fit job', auth: true, body: 'json', bodyLimit: JSON_BODY_LIMIT, params: ModelParams, jsonBody: HyperParams, ok: { status: 202, schema: Type.Object({ jobId: Type.String(), status: Type.Literal('queued') }) } },
  { method: 'GET', url: `${base}/jobs/:jobId`, summary: 'Job status, progress, error and figures', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: JobParams, ok: { status: 200, schema: Job } },
  { method: 'GET', url: `${base}/jobs`, summary: "The calling user's jobs for the model, oldest first", auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: Type.Object({ jobs: Type.Array(Job) }) } },
  { method: 'POST', url: `${base}/jobs/:jobId/cancel`, summary: 'Cancel an open job (final; frees the inputs); 409 when it already succeeded or failed', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: JobParams, ok: { status: 200, schema: Job } },
  { method: 'GET', url: `${base}/jobs/:jobId/refresh`, summary: 'Encrypted weights waiting for a gateway refresh', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: JobParams, ok: { status: 200, schema: 'binary' } },
  { method: 'PUT', url: `${base}/jobs/:jobId/refresh`, summary: 'Freshly re-encrypted weights from the gateway', auth: true, body: 'binary', bodyLimit: 'upload', params: JobParams, ok: { status: 200, schema: Type.Object({ accepted: Type.Literal(true) }) }, heavy: true },
  {
    method: 'POST', url: `${base}/predict`, summary: 'Encrypted logits w·x + b for encrypted feature rows (?features=F)', auth: true, body: 'binary', bodyLimit: 'upload', params: ModelParams,
    querystring: Type.Object({ features: Type.Integer({ minimum: 1, maximum: 4096 }) }), ok: { status: 200, schema: 'binary' }, heavy: true,
  },
  ...INFERENCE_ROUTES,
  { method: 'GET', url: `${base}/usage`, summary: 'Usage figures (bytes in/out, train and predict time, calls)', auth: true, body: 'none', bodyLimit: EMPTY_BODY_LIMIT, params: ModelParams, ok: { status: 200, schema: Type.Object({ usage: Type.Record(Type.String(), Type.Number()) }) } },
];

/** Error statuses every route documents, with when each is answered. */
export const ERROR_STATUSES: Readonly<Record<string, string>> = {
  '400': 'invalid request (CIPHERML_E_INVALID_ARGUMENT, CIPHERML_E_JSON_INVALID, CIPHERML_E_FORMAT_*, CIPHERML_E_INPUT_TOO_LARGE for a declared size, …)',
  '401': 'missing, unknown, expired or revoked bearer token (answered before the body is read)',
  '403': 'not allowed for this user or role',
  '404': 'no such model, job, route or stored item',
  '409': 'conflicting state (registered users, a running job, a model deployed by another owner); CIPHERML_E_JOB_ACTIVE for an upload that would change an open job\'s inputs',
  '413': 'body larger than the route limit (CIPHERML_E_PAYLOAD_TOO_LARGE)',
  '414': 'URL too long (CIPHERML_E_URI_TOO_LONG)',
  '429': 'too many heavy requests of this user in progress (CIPHERML_E_SERVICE_BUSY; Retry-After)',
  '431': 'request headers too large (CIPHERML_E_HEADERS_TOO_LARGE)',
  '500': 'internal failure (CIPHERML_E_STORAGE, CIPHERML_E_WORKER_FAILED)',
};
