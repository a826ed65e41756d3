import { openPostgresDriver } from './postgres.ts';
import { SqlStorage } from './sql.ts';
import { openSqliteDriver } from './sqlite.ts';
import type { Storage } from './types.ts';

export { SCHEMA_VERSION, SqlStorage, hashToken } from './sql.ts';
export type { SqlDriver, SqlValue } from './sql.ts';
export { ACTIVE_JOB_STATUSES, BLOB_KINDS, JOB_STATUSES, ROLES } from './types.ts';
export type { BlobInfo, BlobKind, JobKind, JobPatch, JobRow, JobStatus, ModelRow, Role, Storage, TokenInfo, UserRow } from './types.ts';

/** Where the service keeps its state. */
export interface StorageOptions {
  /** Data folder (SQLite database and blob files). */
  readonly dataDir: string;
  /** `postgres://…` to keep rows and blobs in PostgreSQL instead. */
  readonly db?: string | undefined;
}

/**
 * Opens (and migrates) the service's storage: SQLite in `dataDir` unless `db` is a PostgreSQL URL.
 *
 * @example
 * ```ts
 * const storage = await openStorage({ dataDir: 'data', db: process.env.DATABASE_URL });
 * ```
 */
export async function openStorage(options: StorageOptions): Promise<Storage> {
  if (options.db !== undefined && options.db !== '') return SqlStorage.open(await openPostgresDriver(options.db));
  return SqlStorage.open(openSqliteDriver(options.dataDir));
}
