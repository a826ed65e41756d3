import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { CipherMLError } from '../../core/errors.ts';
import type { BlobInfo, BlobKind, JobKind, JobPatch, JobRow, JobStatus, ModelRow, Role, Storage, TokenInfo, UserRow } from './types.ts';

/** A value bound to a SQL parameter. */
export type SqlValue = string | number | null | Uint8Array;

/**
 * The few things {@link SqlStorage} needs from a database. SQL is written once, with `$1…`
 * placeholders and the portable subset of SQLite and PostgreSQL; `{BLOB}` and `{BIGINT}` in
 * migrations become each dialect's type names.
 *
 * @example
 * ```ts
 * const rows = await driver.all('SELECT id FROM users WHERE name = $1', ['alice']);
 * ```
 */
export interface SqlDriver {
  readonly dialect: 'sqlite' | 'postgres';
  all(sql: string, params?: readonly SqlValue[]): Promise<Record<string, unknown>[]>;
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** Runs `fn` in one transaction (serialized against other transactions of this driver). */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  /** Inside a transaction: holds a lock on `key` until it ends (across processes for PostgreSQL). */
  lock(key: string): Promise<void>;
  /** Blob bytes live where the backend keeps them best (files for SQLite, a table for PostgreSQL). */
  writeBytes(id: string, bytes: Uint8Array): Promise<void>;
  readBytes(id: string): Promise<Uint8Array | undefined>;
  deleteBytes(id: string): Promise<void>;
  close(): Promise<void>;
}

/** Schema migrations, applied in order once each; never edited after release, only appended. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created_at {BIGINT} NOT NULL);
   CREATE TABLE tokens (hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, created_at {BIGINT} NOT NULL);
   CREATE TABLE models (id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, owner_id TEXT NOT NULL REFERENCES users(id), created_at {BIGINT} NOT NULL, UNIQUE (name, version));
   CREATE TABLE registrations (user_id TEXT NOT NULL REFERENCES users(id), model_id TEXT NOT NULL REFERENCES models(id), created_at {BIGINT} NOT NULL, PRIMARY KEY (user_id, model_id));
   CREATE TABLE profiles (user_id TEXT NOT NULL, model_id TEXT NOT NULL, profile TEXT NOT NULL, updated_at {BIGINT} NOT NULL, PRIMARY KEY (user_id, model_id));
   CREATE TABLE blobs (user_id TEXT NOT NULL, model_id TEXT NOT NULL, kind TEXT NOT NULL, bytes_id TEXT NOT NULL, size {BIGINT} NOT NULL, sha256 TEXT NOT NULL, updated_at {BIGINT} NOT NULL, PRIMARY KEY (user_id, model_id, kind));
   CREATE TABLE jobs (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, model_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, progress DOUBLE PRECISION NOT NULL, error TEXT, figures TEXT NOT NULL, state TEXT NOT NULL, created_at {BIGINT} NOT NULL, updated_at {BIGINT} NOT NULL);
   CREATE INDEX jobs_status ON jobs (status);
   CREATE TABLE usage (user_id TEXT NOT NULL, model_id TEXT NOT NULL, counter TEXT NOT NULL, amount DOUBLE PRECISION NOT NULL, PRIMARY KEY (user_id, model_id, counter))`,
  // Token expiry and revocation (issue 13); NULL expires_at = never expires.
  `ALTER TABLE tokens ADD COLUMN expires_at {BIGINT};
   ALTER TABLE tokens ADD COLUMN revoked_at {BIGINT}`,
];

/** Hex characters of a token's SHA-256 that name it in listings and revocation (never the secret). */
export const TOKEN_ID_CHARS = 16;

/** The newest schema version this code writes. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

function typeNames(sql: string, dialect: SqlDriver['dialect']): string {
  return sql.replaceAll('{BLOB}', dialect === 'postgres' ? 'BYTEA' : 'BLOB').replaceAll('{BIGINT}', dialect === 'postgres' ? 'BIGINT' : 'INTEGER');
}

/** SHA-256 of a token, hex: the only form in which tokens are stored. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const str = (v: unknown): string => String(v);
const num = (v: unknown): number => Number(v);

function userOf(r: Record<string, unknown>): UserRow {
  return { id: str(r['id']), name: str(r['name']), role: str(r['role']) as Role, createdAt: num(r['created_at']) };
}
function modelOf(r: Record<string, unknown>): ModelRow {
  return { id: str(r['id']), name: str(r['name']), version: str(r['version']), ownerId: str(r['owner_id']), createdAt: num(r['created_at']) };
}
function jobOf(r: Record<string, unknown>): JobRow {
  return {
    id: str(r['id']),
    userId: str(r['user_id']),
    modelId: str(r['model_id']),
    kind: str(r['kind']) as JobKind,
    status: str(r['status']) as JobStatus,
    progress: num(r['progress']),
    error: r['error'] === null || r['error'] === undefined ? null : (JSON.parse(str(r['error'])) as { code: string; message: string }),
    figures: JSON.parse(str(r['figures'])) as Record<string, unknown>,
    state: JSON.parse(str(r['state'])) as Record<string, unknown>,
    createdAt: num(r['created_at']),
    updatedAt: num(r['updated_at']),
  };
}

/**
 * {@link Storage} over any {@link SqlDriver}: one implementation of the queries for both backends.
 *
 * @example
 * ```ts
 * const storage = await SqlStorage.open(await openSqliteDriver('data'));
 * ```
 */
export class SqlStorage implements Storage {
  readonly backend: 'sqlite' | 'postgres';
  readonly #db: SqlDriver;

  private constructor(db: SqlDriver) {
    this.#db = db;
    this.backend = db.dialect;
  }

  /** Applies pending migrations (in one transaction each) and returns the storage. */
  static async open(db: SqlDriver): Promise<SqlStorage> {
    await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const done = new Set((await db.all('SELECT version FROM schema_migrations')).map((r) => num(r['version'])));
    const newest = Math.max(0, ...done);
    if (newest > MIGRATIONS.length) {
      await db.close();
      throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `the database has schema version ${newest}, this cipherml knows up to ${MIGRATIONS.length}`, { param: 'db' });
    }
    for (let v = 1; v <= MIGRATIONS.length; v++) {
      if (done.has(v)) continue;
      await db.transaction(async (tx) => {
        for (const statement of typeNames(MIGRATIONS[v - 1]!, db.dialect).split(';')) {
          if (statement.trim() !== '') await tx.run(statement);
        }
        await tx.run('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [v, Date.now()]);
      });
    }
    return new SqlStorage(db);
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  async ensureUser(name: string, role: Role): Promise<UserRow> {
    return this.#db.transaction(async (tx) => {
      await tx.lock(`user:${name}`);
      const found = await tx.all('SELECT * FROM users WHERE name = $1', [name]);
      if (found[0] !== undefined) {
        return userOf(found[0]);
      }
      const user: UserRow = { id: randomUUID(), name, role, createdAt: Date.now() };
      await tx.run('INSERT INTO users (id, name, role, created_at) VALUES ($1, $2, $3, $4)', [user.id, name, role, user.createdAt]);
      return user;
    });
  }

  async setRole(name: string, role: Role): Promise<UserRow> {
    const n = await this.#db.run('UPDATE users SET role = $1 WHERE name = $2', [role, name]);
    if (n === 0) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no user ${name}`, { param: '--user' });
    return userOf((await this.#db.all('SELECT * FROM users WHERE name = $1', [name]))[0]!);
  }

  async getUser(name: string): Promise<UserRow | undefined> {
    const r = (await this.#db.all('SELECT * FROM users WHERE name = $1', [name]))[0];
    return r === undefined ? undefined : userOf(r);
  }

  async createToken(userId: string, options: { readonly expiresAt?: number } = {}): Promise<string> {
    const token = `cml_${randomBytes(32).toString('base64url')}`;
    await this.#db.run('INSERT INTO tokens (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)', [hashToken(token), userId, Date.now(), options.expiresAt ?? null]);
    return token;
  }

  async authenticate(token: string): Promise<UserRow | undefined> {
    const hash = hashToken(token);
    const rows = await this.#db.all('SELECT t.hash AS hash, t.expires_at AS expires_at, t.revoked_at AS revoked_at, u.* FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1', [hash]);
    const row = rows[0];
    if (row === undefined) return undefined;
    // The index lookup found a candidate; the decision is a constant-time comparison of digests.
    if (!timingSafeEqual(Buffer.from(str(row['hash']), 'hex'), Buffer.from(hash, 'hex'))) return undefined;
    if (row['revoked_at'] !== null && row['revoked_at'] !== undefined) return undefined;
    if (row['expires_at'] !== null && row['expires_at'] !== undefined && num(row['expires_at']) <= Date.now()) return undefined;
    return userOf(row);
  }

  async listTokens(): Promise<readonly TokenInfo[]> {
    const rows = await this.#db.all('SELECT t.hash AS hash, t.created_at AS created_at, t.expires_at AS expires_at, t.revoked_at AS revoked_at, u.name AS name, u.role AS role FROM tokens t JOIN users u ON u.id = t.user_id ORDER BY u.name, t.created_at');
    const now = Date.now();
    return rows.map((r) => {
      const expiresAt = r['expires_at'] === null || r['expires_at'] === undefined ? null : num(r['expires_at']);
      const revoked = r['revoked_at'] !== null && r['revoked_at'] !== undefined;
      return { id: str(r['hash']).slice(0, TOKEN_ID_CHARS), user: str(r['name']), role: str(r['role']) as Role, createdAt: num(r['created_at']), expiresAt, status: revoked ? 'revoked' : expiresAt !== null && expiresAt <= now ? 'expired' : 'active' };
    });
  }

  async revokeTokens(selector: { readonly id?: string; readonly user?: string }): Promise<number> {
    const now = Date.now();
    if (selector.id !== undefined) {
      if (!/^[0-9a-f]{16}$/.test(selector.id)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `a token id is the ${TOKEN_ID_CHARS} hex characters shown by \`serve token list\`, got ${JSON.stringify(selector.id)}`, { param: '--id' });
      return this.#db.run('UPDATE tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND substr(hash, 1, 16) = $2', [now, selector.id]);
    }
    if (selector.user !== undefined) return this.#db.run('UPDATE tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM users WHERE name = $2)', [now, selector.user]);
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'name the token (--id) or the user (--user) whose tokens to revoke', { param: '--id' });
  }

  async deployModel(ownerId: string, name: string, version: string): Promise<ModelRow> {
    const existing = await this.getModel(name, version);
    if (existing !== undefined && existing.ownerId !== ownerId) {
      throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `model ${name}/${version} is already deployed by another owner`, { param: 'model' });
    }
    if (existing !== undefined) return existing;
    const model: ModelRow = { id: randomUUID(), name, version, ownerId, createdAt: Date.now() };
    await this.#db.run('INSERT INTO models (id, name, version, owner_id, created_at) VALUES ($1, $2, $3, $4, $5)', [model.id, name, version, ownerId, model.createdAt]);
    return model;
  }

  async getModel(name: string, version: string): Promise<ModelRow | undefined> {
    const r = (await this.#db.all('SELECT * FROM models WHERE name = $1 AND version = $2', [name, version]))[0];
    return r === undefined ? undefined : modelOf(r);
  }

  async listModels(): Promise<readonly ModelRow[]> {
    return (await this.#db.all('SELECT * FROM models ORDER BY name, version')).map(modelOf);
  }

  async deleteModel(modelId: string): Promise<void> {
    await this.#db.run('DELETE FROM models WHERE id = $1', [modelId]);
  }

  async register(userId: string, modelId: string): Promise<boolean> {
    if (await this.isRegistered(userId, modelId)) return false;
    await this.#db.run('INSERT INTO registrations (user_id, model_id, created_at) VALUES ($1, $2, $3)', [userId, modelId, Date.now()]);
    return true;
  }

  async isRegistered(userId: string, modelId: string): Promise<boolean> {
    return (await this.#db.all('SELECT 1 AS one FROM registrations WHERE user_id = $1 AND model_id = $2', [userId, modelId])).length > 0;
  }

  async countRegistrations(modelId: string): Promise<number> {
    return num((await this.#db.all('SELECT COUNT(*) AS n FROM registrations WHERE model_id = $1', [modelId]))[0]?.['n']);
  }

  async unregister(userId: string, modelId: string): Promise<boolean> {
    const byteIds = await this.#db.transaction(async (tx) => {
      const ids = (await tx.all('SELECT bytes_id FROM blobs WHERE user_id = $1 AND model_id = $2', [userId, modelId])).map((r) => str(r['bytes_id']));
      const n = await tx.run('DELETE FROM registrations WHERE user_id = $1 AND model_id = $2', [userId, modelId]);
      for (const table of ['blobs', 'profiles', 'jobs', 'usage']) await tx.run(`DELETE FROM ${table} WHERE user_id = $1 AND model_id = $2`, [userId, modelId]);
      return n > 0 ? ids : null;
    });
    if (byteIds === null) return false;
    for (const id of byteIds) await this.#db.deleteBytes(id);
    return true;
  }

  async setProfile(userId: string, modelId: string, profile: Readonly<Record<string, unknown>>): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.lock(`profile:${userId}:${modelId}`);
      await tx.run('DELETE FROM profiles WHERE user_id = $1 AND model_id = $2', [userId, modelId]);
      await tx.run('INSERT INTO profiles (user_id, model_id, profile, updated_at) VALUES ($1, $2, $3, $4)', [userId, modelId, JSON.stringify(profile), Date.now()]);
    });
  }

  async getProfile(userId: string, modelId: string): Promise<Readonly<Record<string, unknown>> | undefined> {
    const r = (await this.#db.all('SELECT profile FROM profiles WHERE user_id = $1 AND model_id = $2', [userId, modelId]))[0];
    return r === undefined ? undefined : (JSON.parse(str(r['profile'])) as Record<string, unknown>);
  }

  async putBlob(userId: string, modelId: string, kind: BlobKind, bytes: Uint8Array, sha256?: string): Promise<BlobInfo> {
    // New bytes are written under a fresh id before the row points at them, so a crash leaves
    // either the old blob or the new one, never a torn one.
    const bytesId = randomUUID();
    await this.#db.writeBytes(bytesId, bytes);
    const info: BlobInfo = { kind, size: bytes.length, sha256: sha256 ?? createHash('sha256').update(bytes).digest('hex'), updatedAt: Date.now() };
    const old = await this.#db.transaction(async (tx) => {
      await tx.lock(`blob:${userId}:${modelId}:${kind}`);
      const prev = (await tx.all('SELECT bytes_id FROM blobs WHERE user_id = $1 AND model_id = $2 AND kind = $3', [userId, modelId, kind]))[0];
      await tx.run('DELETE FROM blobs WHERE user_id = $1 AND model_id = $2 AND kind = $3', [userId, modelId, kind]);
      await tx.run('INSERT INTO blobs (user_id, model_id, kind, bytes_id, size, sha256, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [userId, modelId, kind, bytesId, info.size, info.sha256, info.updatedAt]);
      return prev === undefined ? undefined : str(prev['bytes_id']);
    });
    if (old !== undefined) await this.#db.deleteBytes(old);
    return info;
  }

  async getBlob(userId: string, modelId: string, kind: BlobKind): Promise<Uint8Array | undefined> {
    const r = (await this.#db.all('SELECT bytes_id FROM blobs WHERE user_id = $1 AND model_id = $2 AND kind = $3', [userId, modelId, kind]))[0];
    return r === undefined ? undefined : this.#db.readBytes(str(r['bytes_id']));
  }

  async blobInfo(userId: string, modelId: string, kind: BlobKind): Promise<BlobInfo | undefined> {
    const r = (await this.#db.all('SELECT * FROM blobs WHERE user_id = $1 AND model_id = $2 AND kind = $3', [userId, modelId, kind]))[0];
    return r === undefined ? undefined : { kind, size: num(r['size']), sha256: str(r['sha256']), updatedAt: num(r['updated_at']) };
  }

  async deleteBlob(userId: string, modelId: string, kind: BlobKind): Promise<void> {
    const r = (await this.#db.all('SELECT bytes_id FROM blobs WHERE user_id = $1 AND model_id = $2 AND kind = $3', [userId, modelId, kind]))[0];
    if (r === undefined) return;
    await this.#db.run('DELETE FROM blobs WHERE user_id = $1 AND model_id = $2 AND kind = $3', [userId, modelId, kind]);
    await this.#db.deleteBytes(str(r['bytes_id']));
  }

  async createJob(userId: string, modelId: string, kind: JobKind): Promise<JobRow> {
    const now = Date.now();
    const job: JobRow = { id: randomUUID(), userId, modelId, kind, status: 'queued', progress: 0, error: null, figures: {}, state: {}, createdAt: now, updatedAt: now };
    await this.#db.run('INSERT INTO jobs (id, user_id, model_id, kind, status, progress, error, figures, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9, $10)', [
      job.id, userId, modelId, kind, job.status, 0, '{}', '{}', now, now,
    ]);
    return job;
  }

  async getJob(jobId: string): Promise<JobRow | undefined> {
    const r = (await this.#db.all('SELECT * FROM jobs WHERE id = $1', [jobId]))[0];
    return r === undefined ? undefined : jobOf(r);
  }

  async updateJob(jobId: string, patch: JobPatch): Promise<JobRow> {
    const job = await this.getJob(jobId);
    if (job === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `job ${jobId} does not exist`, { param: 'jobId' });
    const next: JobRow = {
      ...job,
      ...(patch.status === undefined ? {} : { status: patch.status }),
      ...(patch.progress === undefined ? {} : { progress: patch.progress }),
      ...(patch.error === undefined ? {} : { error: patch.error }),
      ...(patch.figures === undefined ? {} : { figures: { ...job.figures, ...patch.figures } }),
      ...(patch.state === undefined ? {} : { state: patch.state }),
      updatedAt: Date.now(),
    };
    // One conditional statement: a final state written meanwhile (a cancel) is never overwritten.
    const n = await this.#db.run("UPDATE jobs SET status = $1, progress = $2, error = $3, figures = $4, state = $5, updated_at = $6 WHERE id = $7 AND status NOT IN ('succeeded', 'failed', 'cancelled')", [
      next.status, next.progress, next.error === null ? null : JSON.stringify(next.error), JSON.stringify(next.figures), JSON.stringify(next.state), next.updatedAt, jobId,
    ]);
    return n === 1 ? next : ((await this.getJob(jobId)) ?? job);
  }

  async listJobs(filter: { readonly status?: readonly JobStatus[]; readonly userId?: string; readonly modelId?: string }): Promise<readonly JobRow[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (filter.userId !== undefined) { params.push(filter.userId); where.push(`user_id = $${params.length}`); }
    if (filter.modelId !== undefined) { params.push(filter.modelId); where.push(`model_id = $${params.length}`); }
    if (filter.status !== undefined) {
      const marks = filter.status.map((s) => { params.push(s); return `$${params.length}`; });
      where.push(marks.length === 0 ? '1 = 0' : `status IN (${marks.join(', ')})`);
    }
    const sql = `SELECT * FROM jobs${where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`} ORDER BY created_at`;
    return (await this.#db.all(sql, params)).map(jobOf);
  }

  async addUsage(userId: string, modelId: string, counter: string, amount: number): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.lock(`usage:${userId}:${modelId}:${counter}`);
      const n = await tx.run('UPDATE usage SET amount = amount + $1 WHERE user_id = $2 AND model_id = $3 AND counter = $4', [amount, userId, modelId, counter]);
      if (n === 0) await tx.run('INSERT INTO usage (user_id, model_id, counter, amount) VALUES ($1, $2, $3, $4)', [userId, modelId, counter, amount]);
    });
  }

  async getUsage(userId: string, modelId: string): Promise<Readonly<Record<string, number>>> {
    const rows = await this.#db.all('SELECT counter, amount FROM usage WHERE user_id = $1 AND model_id = $2 ORDER BY counter', [userId, modelId]);
    return Object.fromEntries(rows.map((r) => [str(r['counter']), num(r['amount'])]));
  }
}
