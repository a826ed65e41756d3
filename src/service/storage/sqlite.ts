import { mkdirSync } from 'node:fs';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { CipherMLError } from '../../core/errors.ts';
import { writeFileSafely } from '../../core/io.ts';
import type { SqlDriver, SqlValue } from './sql.ts';

/** Serializes async critical sections (one SQLite connection, many concurrent requests). */
class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

function storageError(e: unknown, what: string): CipherMLError {
  return e instanceof CipherMLError ? e : new CipherMLError('CIPHERML_E_STORAGE', `${what}: ${(e as Error).message}`, { param: 'data', cause: e });
}

/**
 * The embedded backend: `DIR/service.db` (SQLite through `node:sqlite`, WAL journal) and blob
 * bytes as files under `DIR/blobs/`, each written atomically (temporary file, fsync, rename).
 *
 * @example
 * ```ts
 * const storage = await SqlStorage.open(openSqliteDriver('data'));
 * ```
 */
export function openSqliteDriver(dataDir: string): SqlDriver {
  let db: DatabaseSync;
  try {
    mkdirSync(join(dataDir, 'blobs'), { recursive: true, mode: 0o700 });
    // Reached through getBuiltinModule (not a static import) so older Node.js fails at the version check, not at link time.
    db = new (process.getBuiltinModule('node:sqlite').DatabaseSync)(join(dataDir, 'service.db'));
    db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL');
  } catch (e) {
    throw storageError(e, `cannot open the data folder ${dataDir}`);
  }
  const lock = new Mutex();
  const toSqlite = (sql: string): string => sql.replace(/\$(\d+)/g, '?$1');
  const direct = {
    all: async (sql: string, params: readonly SqlValue[] = []): Promise<Record<string, unknown>[]> => {
      try {
        return db.prepare(toSqlite(sql)).all(...params) as Record<string, unknown>[];
      } catch (e) {
        throw storageError(e, 'query failed');
      }
    },
    run: async (sql: string, params: readonly SqlValue[] = []): Promise<number> => {
      try {
        return Number(db.prepare(toSqlite(sql)).run(...params).changes);
      } catch (e) {
        throw storageError(e, 'statement failed');
      }
    },
  };
  const blobPath = (id: string): string => join(dataDir, 'blobs', id.slice(0, 2), id);
  const driver: SqlDriver = {
    dialect: 'sqlite',
    all: (sql, params) => lock.run(() => direct.all(sql, params)),
    run: (sql, params) => lock.run(() => direct.run(sql, params)),
    // One connection and a mutex around every statement: transactions are already exclusive.
    lock: async () => undefined,
    transaction: (fn) =>
      lock.run(async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const tx: SqlDriver = { ...driver, all: direct.all, run: direct.run, transaction: (inner) => inner(tx) };
          const out = await fn(tx);
          db.exec('COMMIT');
          return out;
        } catch (e) {
          db.exec('ROLLBACK');
          throw e;
        }
      }),
    writeBytes: async (id, bytes) => {
      await mkdir(join(dataDir, 'blobs', id.slice(0, 2)), { recursive: true, mode: 0o700 });
      await writeFileSafely(blobPath(id), bytes, { mode: 0o600, overwrite: true });
    },
    readBytes: async (id) => {
      try {
        return new Uint8Array(await readFile(blobPath(id)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw storageError(e, `cannot read blob ${id}`);
      }
    },
    deleteBytes: async (id) => {
      await unlink(blobPath(id)).catch(() => undefined);
    },
    close: async () => {
      await lock.run(async () => db.close());
    },
  };
  return driver;
}
