/**
 * The storage model of the training service. Everything the service keeps survives a restart:
 * users, hashed tokens, deployed models, registrations, profiles, contexts, encrypted blobs, jobs
 * and usage counters. Blobs are opaque bytes (ciphertexts, public contexts, the gateway's
 * passphrase-encrypted secret context); the service never holds a secret key in the clear.
 */

/** Roles: an owner deploys and undeploys models; a user registers and trains. */
export const ROLES = ['owner', 'user'] as const;
/** A user's role. */
export type Role = (typeof ROLES)[number];

/** A user as stored. */
export interface UserRow {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly createdAt: number;
}

/** A token as listed: never the secret, never the full hash. */
export interface TokenInfo {
  readonly id: string;
  readonly user: string;
  readonly role: Role;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly status: 'active' | 'expired' | 'revoked';
}

/** A deployed model (name/version pair). */
export interface ModelRow {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly ownerId: string;
  readonly createdAt: number;
}

/** The kinds of per-user, per-model blobs the service stores. */
export const BLOB_KINDS = ['public_context', 'secret_context', 'model', 'train_data', 'trained_model', 'predict_input', 'predict_output', 'refresh_request', 'refresh_reply', 'inference_model', 'inference_keyparams', 'inference_keys', 'inference_input', 'inference_output'] as const;
/** One of {@link BLOB_KINDS}. */
export type BlobKind = (typeof BLOB_KINDS)[number];

/** Metadata of a stored blob. */
export interface BlobInfo {
  readonly kind: BlobKind;
  readonly size: number;
  /** SHA-256 of the bytes, hex. */
  readonly sha256: string;
  readonly updatedAt: number;
}

/**
 * Job states. `awaiting_refresh` waits for the gateway to re-encrypt the weights. `succeeded`,
 * `failed` and `cancelled` are final: storage never changes a job that reached one of them.
 */
export const JOB_STATUSES = ['queued', 'running', 'awaiting_refresh', 'succeeded', 'failed', 'cancelled'] as const;
/** The states of an open job: it holds its user's inputs for the model (uploads are refused). */
export const ACTIVE_JOB_STATUSES = ['queued', 'running', 'awaiting_refresh'] as const;
/** One of {@link JOB_STATUSES}. */
export type JobStatus = (typeof JOB_STATUSES)[number];

/** What a job does: train (fit), the unused synchronous predict, or encrypted ONNX inference (infer). */
export type JobKind = 'fit' | 'predict' | 'infer';

/** A training or inference job. */
export interface JobRow {
  readonly id: string;
  readonly userId: string;
  readonly modelId: string;
  readonly kind: JobKind;
  readonly status: JobStatus;
  /** 0..1 */
  readonly progress: number;
  readonly error: { readonly code: string; readonly message: string } | null;
  /** Figures the job reports (trainMs, epochs, refreshes, …). */
  readonly figures: Readonly<Record<string, unknown>>;
  /** Resumable state (epoch reached, …). */
  readonly state: Readonly<Record<string, unknown>>;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Fields a job update may change. */
export interface JobPatch {
  readonly status?: JobStatus;
  readonly progress?: number;
  readonly error?: { readonly code: string; readonly message: string } | null;
  readonly figures?: Readonly<Record<string, unknown>>;
  readonly state?: Readonly<Record<string, unknown>>;
}

/**
 * The storage interface; {@link openStorage} returns the SQLite or the PostgreSQL implementation.
 *
 * @example
 * ```ts
 * const storage = await openStorage({ dataDir: 'data' });
 * const user = await storage.ensureUser('alice', 'user');
 * const token = await storage.createToken(user.id);
 * ```
 */
export interface Storage {
  /** `sqlite` or `postgres`. */
  readonly backend: 'sqlite' | 'postgres';
  close(): Promise<void>;
  /** Creates the user with `role` if needed; an existing user is returned unchanged (roles change only through {@link Storage.setRole}). */
  ensureUser(name: string, role: Role): Promise<UserRow>;
  /** Changes a user's role (the explicit `serve token role` command). */
  setRole(name: string, role: Role): Promise<UserRow>;
  getUser(name: string): Promise<UserRow | undefined>;
  /** A new random bearer token for the user; only its SHA-256 is stored. `expiresAt` in ms since the epoch. */
  createToken(userId: string, options?: { readonly expiresAt?: number }): Promise<string>;
  /** The token's user, or undefined for an unknown, revoked or expired token (constant-time comparison of the hashes). */
  authenticate(token: string): Promise<UserRow | undefined>;
  /** Every token without its secret: id (a prefix of its SHA-256), user, role, times, status. */
  listTokens(): Promise<readonly TokenInfo[]>;
  /** Revokes one token by id, or every token of a user; returns how many were revoked. */
  revokeTokens(selector: { readonly id?: string; readonly user?: string }): Promise<number>;
  /** Deploys, or returns the row when this owner already deployed it; CONFLICT when another owner did. */
  deployModel(ownerId: string, name: string, version: string): Promise<ModelRow>;
  getModel(name: string, version: string): Promise<ModelRow | undefined>;
  listModels(): Promise<readonly ModelRow[]>;
  deleteModel(modelId: string): Promise<void>;
  register(userId: string, modelId: string): Promise<boolean>;
  isRegistered(userId: string, modelId: string): Promise<boolean>;
  countRegistrations(modelId: string): Promise<number>;
  /** Deletes the registration and every blob, profile, job and usage row of that user for the model. */
  unregister(userId: string, modelId: string): Promise<boolean>;
  setProfile(userId: string, modelId: string, profile: Readonly<Record<string, unknown>>): Promise<void>;
  getProfile(userId: string, modelId: string): Promise<Readonly<Record<string, unknown>> | undefined>;
  /** Stores (replacing atomically) the user's blob of this kind for the model; `sha256` when the caller hashed the bytes already (off the event loop). */
  putBlob(userId: string, modelId: string, kind: BlobKind, bytes: Uint8Array, sha256?: string): Promise<BlobInfo>;
  getBlob(userId: string, modelId: string, kind: BlobKind): Promise<Uint8Array | undefined>;
  blobInfo(userId: string, modelId: string, kind: BlobKind): Promise<BlobInfo | undefined>;
  deleteBlob(userId: string, modelId: string, kind: BlobKind): Promise<void>;
  createJob(userId: string, modelId: string, kind: JobKind): Promise<JobRow>;
  getJob(jobId: string): Promise<JobRow | undefined>;
  /** Applies the patch unless the job is final (succeeded, failed, cancelled): then it returns the stored row unchanged, so a cancel is never overwritten by its worker. */
  updateJob(jobId: string, patch: JobPatch): Promise<JobRow>;
  listJobs(filter: { readonly status?: readonly JobStatus[]; readonly userId?: string; readonly modelId?: string }): Promise<readonly JobRow[]>;
  addUsage(userId: string, modelId: string, counter: string, amount: number): Promise<void>;
  getUsage(userId: string, modelId: string): Promise<Readonly<Record<string, number>>>;
}
