import { CipherMLError } from '../../core/errors.ts';
import { importOptional } from '../../core/optional.ts';
import type { SqlDriver, SqlValue } from './sql.ts';

function storageError(e: unknown, what: string): CipherMLError {
  return e instanceof CipherMLError ? e : new CipherMLError('CIPHERML_E_STORAGE', `${what}: ${(e as Error).message}`, { param: 'db', cause: e });
}

interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

/**
 * The PostgreSQL backend (`--db postgres://…`): rows and blob bytes (a `blob_bytes` BYTEA table)
 * in one database, so `cipherml serve worker` processes on other machines see the same blobs.
 *
 * @example
 * ```ts
 * const storage = await SqlStorage.open(await openPostgresDriver('postgres://localhost/cipherml'));
 * ```
 */
export async function openPostgresDriver(url: string): Promise<SqlDriver> {
  // pg is an optional peer dependency: loaded only when PostgreSQL is configured.
  const pg = (await importOptional(() => import('pg'), { name: 'pg', param: '--db', purpose: 'PostgreSQL storage' })).default;
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  try {
    await pool.query('CREATE TABLE IF NOT EXISTS blob_bytes (id TEXT PRIMARY KEY, bytes BYTEA NOT NULL)');
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw storageError(e, `cannot connect to ${url.replace(/\/\/[^@/]*@/, '//…@')}`);
  }
  const make = (q: Queryable): Pick<SqlDriver, 'all' | 'run'> => ({
    all: async (sql, params: readonly SqlValue[] = []) => {
      try {
        return (await q.query(sql, [...params])).rows;
      } catch (e) {
        throw storageError(e, 'query failed');
      }
    },
    run: async (sql, params: readonly SqlValue[] = []) => {
      try {
        return (await q.query(sql, [...params])).rowCount ?? 0;
      } catch (e) {
        throw storageError(e, 'statement failed');
      }
    },
  });
  const top = make(pool);
  const driver: SqlDriver = {
    dialect: 'postgres',
    ...top,
    lock: async () => {
      throw new CipherMLError('CIPHERML_E_STORAGE', 'lock() is only valid inside a transaction', { param: 'lock' });
    },
    transaction: async (fn) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const inTx = make(client);
        const tx: SqlDriver = {
          ...driver,
          ...inTx,
          transaction: (inner) => inner(tx),
          lock: async (key) => {
            await inTx.run('SELECT pg_advisory_xact_lock(hashtext($1))', [key]);
          },
        };
        const out = await fn(tx);
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    writeBytes: async (id, bytes) => {
      await top.run('INSERT INTO blob_bytes (id, bytes) VALUES ($1, $2)', [id, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
    },
    readBytes: async (id) => {
      const r = (await top.all('SELECT bytes FROM blob_bytes WHERE id = $1', [id]))[0];
      return r === undefined ? undefined : new Uint8Array(r['bytes'] as Buffer);
    },
    deleteBytes: async (id) => {
      await top.run('DELETE FROM blob_bytes WHERE id = $1', [id]);
    },
    close: async () => {
      await pool.end();
    },
  };
  return driver;
}
