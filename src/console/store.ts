import { createHash, randomBytes } from 'node:crypto';
import { CipherMLError } from '../core/errors.ts';

/**
 * Console accounts, sessions and token names, kept in the service's database (SQLite file or
 * PostgreSQL) in tables of their own (`console_*`). The service's users and bearer tokens stay in
 * the service's token store: a console account IS a service user (role `user`), and a token made
 * in the console is an ordinary service bearer token (only its SHA-256 is stored there); this
 * store adds the token's name and the session rows.
 *
 * Invariants: sessions are stored as SHA-256 of the cookie value (a database reader cannot
 * sign in); a session row is valid only before `expires_at`; a console account never takes over
 * a service user made by `cipherml serve token create` (sign-up refuses the name).
 */

/** A value bound to a SQL parameter (the subset of the service's driver this store uses). */
export type ConsoleSqlValue = string | number | null;

/** What this store needs from a database: `$1…` placeholders, the portable SQL subset. */
export interface ConsoleDb {
  readonly dialect: 'sqlite' | 'postgres';
  all(sql: string, params?: readonly ConsoleSqlValue[]): Promise<Record<string, unknown>[]>;
  run(sql: string, params?: readonly ConsoleSqlValue[]): Promise<number>;
}

/** A service user, as the console sees it. */
export interface ConsoleUser {
  readonly id: string;
  readonly name: string;
  readonly role: 'owner' | 'user';
}

/** A bearer token as the service lists it. */
export interface ServiceTokenInfo {
  readonly id: string;
  readonly user: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly status: 'active' | 'expired' | 'revoked';
}

/** The service's user and token store, as the console uses it (the service's `Storage` fits). */
export interface ServiceTokens {
  ensureUser(name: string, role: 'user'): Promise<ConsoleUser>;
  getUser(name: string): Promise<ConsoleUser | undefined>;
  createToken(userId: string, options?: { readonly expiresAt?: number }): Promise<string>;
  listTokens(): Promise<readonly ServiceTokenInfo[]>;
  revokeTokens(selector: { readonly id?: string }): Promise<number>;
}

/** A session as the routes see it. */
export interface Session {
  readonly user: ConsoleUser;
  readonly csrf: string;
  readonly expiresAt: number;
}

const TABLES: readonly string[] = [
  'CREATE TABLE IF NOT EXISTS console_accounts (user_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, password TEXT NOT NULL, created_at {BIGINT} NOT NULL)',
  'CREATE TABLE IF NOT EXISTS console_sessions (hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, csrf TEXT NOT NULL, created_at {BIGINT} NOT NULL, expires_at {BIGINT} NOT NULL)',
  'CREATE TABLE IF NOT EXISTS console_tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, created_at {BIGINT} NOT NULL)',
  // The browser's passphrase-sealed key record (opaque to the service), base64, one per user.
  'CREATE TABLE IF NOT EXISTS console_key_backups (user_id TEXT PRIMARY KEY, record TEXT NOT NULL, sha256 TEXT NOT NULL, updated_at {BIGINT} NOT NULL)',
];

/** Active (unexpired, unrevoked) tokens one user may hold; storage per user stays bounded. */
export const MAX_ACTIVE_TOKENS = 50;

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
/** The service names a token by the first 16 hex characters of its SHA-256. */
const tokenId = (token: string): string => sha256(token).slice(0, 16);

/** Accounts, sessions and token names of the console (see the file comment). */
export class ConsoleStore {
  readonly #db: ConsoleDb;
  readonly #service: ServiceTokens;
  readonly #now: () => number;

  private constructor(db: ConsoleDb, service: ServiceTokens, now: () => number) {
    this.#db = db;
    this.#service = service;
    this.#now = now;
  }

  /**
   * Creates the console tables if needed.
   *
   * @example
   * ```ts
   * const store = await ConsoleStore.open(db, storage);
   * ```
   */
  static async open(db: ConsoleDb, service: ServiceTokens, now: () => number = Date.now): Promise<ConsoleStore> {
    for (const t of TABLES) await db.run(t.replaceAll('{BIGINT}', db.dialect === 'postgres' ? 'BIGINT' : 'INTEGER'));
    return new ConsoleStore(db, service, now);
  }

  /** Creates the service user and its console account; CONFLICT when the name is taken (by a console account or a service user). */
  async createAccount(name: string, passwordHash: string): Promise<ConsoleUser> {
    if ((await this.#service.getUser(name)) !== undefined) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `the name ${name} is taken`, { param: 'name', advice: 'Choose another user name, or sign in if this is your account.' });
    const user = await this.#service.ensureUser(name, 'user');
    try {
      await this.#db.run('INSERT INTO console_accounts (user_id, name, password, created_at) VALUES ($1, $2, $3, $4)', [user.id, name, passwordHash, this.#now()]);
    } catch {
      throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `the name ${name} is taken`, { param: 'name', advice: 'Choose another user name, or sign in if this is your account.' });
    }
    return user;
  }

  /** The stored password hash and user of an account, or undefined. */
  async account(name: string): Promise<{ user: ConsoleUser; passwordHash: string } | undefined> {
    const rows = await this.#db.all('SELECT password FROM console_accounts WHERE name = $1', [name]);
    if (rows.length === 0) return undefined;
    const user = await this.#service.getUser(name);
    if (user === undefined) return undefined;
    return { user, passwordHash: String(rows[0]!['password']) };
  }

  /** A new session; returns the cookie value (shown to the browser only) and the CSRF token. */
  async createSession(user: ConsoleUser, ttlMs: number): Promise<{ cookie: string; csrf: string; expiresAt: number }> {
    const cookie = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const now = this.#now();
    await this.#db.run('DELETE FROM console_sessions WHERE expires_at <= $1', [now]);
    await this.#db.run('INSERT INTO console_sessions (hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [sha256(cookie), user.id, csrf, now, now + ttlMs]);
    return { cookie, csrf, expiresAt: now + ttlMs };
  }

  /** The session of a cookie value, or undefined when unknown or expired. */
  async session(cookie: string): Promise<Session | undefined> {
    const rows = await this.#db.all('SELECT s.csrf AS csrf, s.expires_at AS expires_at, a.name AS name FROM console_sessions s JOIN console_accounts a ON a.user_id = s.user_id WHERE s.hash = $1', [sha256(cookie)]);
    const r = rows[0];
    if (r === undefined || Number(r['expires_at']) <= this.#now()) return undefined;
    const user = await this.#service.getUser(String(r['name']));
    if (user === undefined) return undefined;
    return { user, csrf: String(r['csrf']), expiresAt: Number(r['expires_at']) };
  }

  async deleteSession(cookie: string): Promise<void> {
    await this.#db.run('DELETE FROM console_sessions WHERE hash = $1', [sha256(cookie)]);
  }

  /** A new bearer token of the user, named; the token itself is returned once and never stored. CONFLICT at {@link MAX_ACTIVE_TOKENS} active tokens. */
  async createToken(user: ConsoleUser, name: string, expiresAt: number): Promise<{ id: string; token: string }> {
    const active = (await this.#service.listTokens()).filter((t) => t.user === user.name && t.status === 'active').length;
    if (active >= MAX_ACTIVE_TOKENS) throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `you have ${active} active tokens, the most one user may have`, { param: 'name', advice: 'Revoke tokens you no longer use, then create the new one.' });
    const token = await this.#service.createToken(user.id, { expiresAt });
    const id = tokenId(token);
    await this.#db.run('INSERT INTO console_tokens (id, user_id, name, created_at) VALUES ($1, $2, $3, $4)', [id, user.id, name, this.#now()]);
    return { id, token };
  }

  /** Every token of the user (also those an operator made with `serve token create`, named "(cli)"). */
  async listTokens(user: ConsoleUser): Promise<{ id: string; name: string; createdAt: number; expiresAt: number | null; status: 'active' | 'expired' | 'revoked' }[]> {
    const names = new Map((await this.#db.all('SELECT id, name FROM console_tokens WHERE user_id = $1', [user.id])).map((r) => [String(r['id']), String(r['name'])]));
    return (await this.#service.listTokens()).filter((t) => t.user === user.name).map((t) => ({ id: t.id, name: names.get(t.id) ?? '(cli)', createdAt: t.createdAt, expiresAt: t.expiresAt, status: t.status }));
  }

  /** Stores (replacing) the user's sealed key record: opaque bytes the service never opens. */
  async putKeyBackup(user: ConsoleUser, bytes: Uint8Array): Promise<{ size: number; sha256: string }> {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const sha = createHash('sha256').update(b).digest('hex');
    const now = this.#now();
    const n = await this.#db.run('UPDATE console_key_backups SET record = $2, sha256 = $3, updated_at = $4 WHERE user_id = $1', [user.id, b.toString('base64'), sha, now]);
    if (n === 0) await this.#db.run('INSERT INTO console_key_backups (user_id, record, sha256, updated_at) VALUES ($1, $2, $3, $4)', [user.id, b.toString('base64'), sha, now]);
    return { size: b.length, sha256: sha };
  }

  /** The user's sealed key record, or undefined. */
  async getKeyBackup(user: ConsoleUser): Promise<Uint8Array | undefined> {
    const r = (await this.#db.all('SELECT record FROM console_key_backups WHERE user_id = $1', [user.id]))[0];
    return r === undefined ? undefined : new Uint8Array(Buffer.from(String(r['record']), 'base64'));
  }

  /** Revokes one of the user's own tokens; NOT_FOUND for another user's or an unknown id. */
  async revokeToken(user: ConsoleUser, id: string): Promise<void> {
    const own = (await this.#service.listTokens()).find((t) => t.user === user.name && t.id === id);
    if (own === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `you have no token ${id}`, { param: 'id', advice: 'List your tokens (GET /api/v1/console/tokens) and revoke one of those ids.' });
    if (own.status === 'revoked') return;
    await this.#service.revokeTokens({ id });
  }
}
