/**
 * The console's calls to the service: same origin, JSON, the session cookie (httpOnly, sent by
 * the browser) and, on every state-changing call, the session's CSRF token in X-CSRF-Token.
 * Errors are the service's typed errors ({error: {code, message, param}}).
 */

export interface SessionInfo {
  readonly user: { readonly name: string; readonly role: 'owner' | 'user' };
  readonly csrfToken: string;
  readonly expiresAt: number;
}

export interface TokenRow {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly status: 'active' | 'expired' | 'revoked';
}

/** A typed error answered by the service. */
export class ApiError extends Error {
  readonly code: string;
  readonly param: string | undefined;
  readonly status: number;
  constructor(status: number, code: string, message: string, param: string | undefined) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

let csrf = '';

async function fail(r: Response): Promise<never> {
  const e = ((await r.json().catch(() => ({}))) as { error?: { code: string; message: string; param?: string } }).error;
  throw new ApiError(r.status, e?.code ?? 'HTTP', e?.message ?? `HTTP ${r.status}`, e?.param);
}

/** A binary request (ciphertext containers, public contexts, sealed key records); resolves with the answer's bytes. */
async function bytes(method: string, path: string, body?: Uint8Array): Promise<Uint8Array> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/octet-stream';
  if (method !== 'GET' && csrf !== '') headers['x-csrf-token'] = csrf;
  const r = await fetch(path, { method, headers, credentials: 'same-origin', ...(body === undefined ? {} : { body: new Uint8Array(body) }) });
  if (!r.ok) return fail(r);
  return new Uint8Array(await r.arrayBuffer());
}

/** Job state as `GET …/jobs/{id}` answers it (docs/service.md). */
export interface JobState {
  readonly status: 'queued' | 'running' | 'awaiting_refresh' | 'succeeded' | 'failed' | 'cancelled';
  readonly progress: number;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly figures: Record<string, unknown>;
}

/** One job as the job routes show it (src/service/job-routes.ts jobView). */
export interface JobView extends JobState {
  readonly jobId: string;
  readonly kind: 'fit' | 'predict' | 'infer';
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** What `POST …/inference/deploy` answers (src/gateway/inference.ts DeployReply, the fields the page shows). */
export interface InferenceDeployReply {
  readonly modelUrl: string;
  readonly keyParamsUrl: string;
  readonly depth: number;
  readonly polyModulusDegree: number;
  readonly packing: string;
}

/** One event of a job's log (`figures.log`, src/service/job-log.ts). */
export interface JobEvent {
  readonly t: number;
  readonly event: string;
  readonly message: string;
}

const modelPath = (model: string): string => {
  const [name, version] = model.split('/');
  return `/api/v1/${encodeURIComponent(name ?? '')}/${encodeURIComponent(version ?? '')}`;
};

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf !== '') headers['x-csrf-token'] = csrf;
  const r = await fetch(path, { method, headers, credentials: 'same-origin', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const data = (await r.json().catch(() => ({}))) as { error?: { code: string; message: string; param?: string } };
  if (!r.ok) throw new ApiError(r.status, data.error?.code ?? 'HTTP', data.error?.message ?? `HTTP ${r.status}`, data.error?.param);
  return data as T;
}

const remember = (s: SessionInfo): SessionInfo => {
  csrf = s.csrfToken;
  return s;
};

export const api = {
  session: async (): Promise<SessionInfo> => remember(await call<SessionInfo>('GET', '/api/v1/console/session')),
  signUp: async (name: string, password: string): Promise<SessionInfo> => remember(await call<SessionInfo>('POST', '/api/v1/console/signup', { name, password })),
  signIn: async (name: string, password: string): Promise<SessionInfo> => remember(await call<SessionInfo>('POST', '/api/v1/console/signin', { name, password })),
  signOut: async (): Promise<void> => {
    await call('POST', '/api/v1/console/signout');
    csrf = '';
  },
  tokens: async (): Promise<readonly TokenRow[]> => (await call<{ tokens: TokenRow[] }>('GET', '/api/v1/console/tokens')).tokens,
  createToken: (name: string, expiresDays: number): Promise<{ id: string; name: string; token: string; expiresAt: number }> => call('POST', '/api/v1/console/tokens', { name, expiresDays }),
  revokeToken: (id: string): Promise<{ revoked: true }> => call('DELETE', `/api/v1/console/tokens/${encodeURIComponent(id)}`),
  /** Deployed models (REST API, authenticated by the session). */
  models: async (): Promise<readonly { name: string; version: string; url: string }[]> => (await call<{ models: { name: string; version: string; url: string }[] }>('GET', '/api/v1/models')).models,
  /** Owner: deploys `name/version` for training (idempotent for the owner who deployed it). */
  deploy: (name: string, version: string): Promise<{ modelUrl: string }> => call('POST', `/api/v1/${encodeURIComponent(name)}/${encodeURIComponent(version)}/deploy_model`),
  /** Owner: undeploys a model this owner deployed (409 while users are registered). */
  undeploy: (name: string, version: string): Promise<{ undeployed: true }> => call('DELETE', `/api/v1/${encodeURIComponent(name)}/${encodeURIComponent(version)}/undeploy_model`),
  /**
   * Owner: deploys a deployed model for encrypted inference with a deploy bundle (ONNX model and
   * calibration inputs, src/inference/deploy-bundle.ts); the service calibrates (`he keyparams`).
   */
  deployInference: async (name: string, version: string, bundle: Uint8Array): Promise<InferenceDeployReply> =>
    JSON.parse(new TextDecoder().decode(await bytes('POST', `/api/v1/${encodeURIComponent(name)}/${encodeURIComponent(version)}/inference/deploy`, bundle))) as InferenceDeployReply,
  register: (name: string, version: string): Promise<{ registered: true; new: boolean }> => call('POST', `/api/v1/${encodeURIComponent(name)}/${encodeURIComponent(version)}/application/register_user`),
  unregister: (name: string, version: string): Promise<{ unregistered: true }> => call('DELETE', `/api/v1/${encodeURIComponent(name)}/${encodeURIComponent(version)}/application/unregister_user`),
  /**
   * The REST API of one model (docs/service.md), as the CLI gateway calls it, authenticated by the
   * session: uploads and downloads are ciphertext containers and key envelopes made in this page.
   */
  model: (model: string) => {
    const base = modelPath(model);
    return {
      register: (): Promise<{ registered: true; new: boolean }> => call('POST', `${base}/application/register_user`),
      addProfile: (requirements: Record<string, unknown>): Promise<unknown> => call('POST', `${base}/add_profile`, requirements),
      put: async (what: 'context/public' | 'context/secret' | 'model' | 'data/fit' | 'model/trained', body: Uint8Array): Promise<void> => void (await bytes('PUT', `${base}/${what}`, body)),
      get: (what: 'context/secret' | 'model/trained'): Promise<Uint8Array> => bytes('GET', `${base}/${what}`),
      fit: (hyper: Record<string, unknown>): Promise<{ jobId: string }> => call('POST', `${base}/fit`, hyper),
      job: (id: string): Promise<JobState> => call('GET', `${base}/jobs/${encodeURIComponent(id)}`),
      refreshWeights: (id: string): Promise<Uint8Array> => bytes('GET', `${base}/jobs/${encodeURIComponent(id)}/refresh`),
      answerRefresh: async (id: string, body: Uint8Array): Promise<void> => void (await bytes('PUT', `${base}/jobs/${encodeURIComponent(id)}/refresh`, body)),
      predict: (features: number, body: Uint8Array): Promise<Uint8Array> => bytes('POST', `${base}/predict?features=${features}`, body),
    };
  },
  /** The caller's jobs of every model they are registered for (`GET /api/v1/jobs`). */
  jobs: async (): Promise<readonly { name: string; version: string; jobs: readonly JobView[] }[]> => (await call<{ models: { name: string; version: string; jobs: JobView[] }[] }>('GET', '/api/v1/jobs')).models,
  cancelJob: (model: string, id: string): Promise<JobView> => call('POST', `${modelPath(model)}/jobs/${encodeURIComponent(id)}/cancel`),
  /** The encrypted-inference routes of one model (src/inference/service-wire.ts inferencePaths). */
  inference: (model: string) => {
    const base = modelPath(model);
    return {
      published: (): Promise<{ inference: { keyParamsUrl: string; limits: { keysBytes: number; inputBytes: number } } | null }> => call('GET', base),
      keyParams: <T>(): Promise<T> => call('GET', `${base}/inference/keyparams`),
      register: (): Promise<{ registered: true; new: boolean }> => call('POST', `${base}/application/register_user`),
      storedKeys: (): Promise<{ sha256: string; size: number } | undefined> =>
        call<{ sha256: string; size: number }>('GET', `${base}/inference/keys`).catch((e: unknown) => (e instanceof ApiError && e.status === 404 ? undefined : Promise.reject(e))),
      putKeys: async (body: Uint8Array): Promise<void> => void (await bytes('PUT', `${base}/inference/keys`, body)),
      infer: async (body: Uint8Array): Promise<{ jobId: string }> => JSON.parse(new TextDecoder().decode(await bytes('POST', `${base}/inference`, body))) as { jobId: string },
      job: (id: string): Promise<JobView> => call('GET', `${base}/jobs/${encodeURIComponent(id)}`),
      output: (id: string): Promise<Uint8Array> => bytes('GET', `${base}/jobs/${encodeURIComponent(id)}/output`),
    };
  },
  /** Keeps the passphrase-sealed key record on the service (opaque bytes to it). */
  putKeyBackup: async (record: string): Promise<void> => {
    const r = await fetch('/api/v1/console/keys', { method: 'PUT', credentials: 'same-origin', headers: { 'content-type': 'application/octet-stream', 'x-csrf-token': csrf }, body: new TextEncoder().encode(record) });
    if (!r.ok) {
      const e = ((await r.json().catch(() => ({}))) as { error?: { code: string; message: string; param?: string } }).error;
      throw new ApiError(r.status, e?.code ?? 'HTTP', e?.message ?? `HTTP ${r.status}`, e?.param);
    }
  },
  /** The sealed key record kept on the service, or undefined when there is none. */
  getKeyBackup: async (): Promise<string | undefined> => {
    const r = await fetch('/api/v1/console/keys', { credentials: 'same-origin' });
    if (r.status === 404) return undefined;
    if (!r.ok) throw new ApiError(r.status, 'HTTP', `HTTP ${r.status}`, undefined);
    return new TextDecoder().decode(await r.arrayBuffer());
  },
};
