import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { assertOneOf } from '../core/guards.ts';
import { intOption, portOption } from './options.ts';
import type { Role, Storage } from '../service/index.ts';

/** `cipherml serve …` — the untrusted training service and its token tool (loaded lazily: other commands never load fastify or pg). */
export function registerServeCommands(program: Command): void {
  const serve = program
    .command('serve')
    .description('run the encrypted training service (REST under /api/v1, docs at /docs)')
    .option('--port <port>', 'TCP port (0 = any free port)', portOption('--port'), 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data <dir>', 'data folder (SQLite database and blob files)', 'data')
    .option('--db <url>', 'postgres://… to keep rows and blobs in PostgreSQL')
    .option('--max-body-mb <mb>', 'largest request body in MiB', intOption('--max-body-mb'), 256)
    .option('--redis <url>', 'redis://… to queue fit jobs (BullMQ) for `cipherml serve worker` processes')
    .option('--json', 'print one JSON line with the URL once listening')
    .option('--no-console', 'serve the REST API only, without the web console at /')
    .option('--tls-cert <pem>', 'PEM certificate chain: serve HTTPS (with --tls-key)')
    .option('--tls-key <pem>', 'PEM private key of --tls-cert')
    .option('--refresh-timeout <seconds>', 'a fit job whose refresh the gateway does not answer within this time fails (CIPHERML_E_REFRESH_TIMEOUT) and frees its user', intOption('--refresh-timeout'), 1800)
    .action(async (opts: { port: number; host: string; data: string; db?: string; redis?: string; maxBodyMb: number; json?: boolean; console: boolean; tlsCert?: string; tlsKey?: string; refreshTimeout: number }) => {
      if (opts.refreshTimeout < 1 || opts.refreshTimeout > 7 * 86_400) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--refresh-timeout must be 1–604800 seconds, got ${opts.refreshTimeout}`, { param: '--refresh-timeout' });
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'HTTPS needs both the certificate and its key', { param: opts.tlsCert === undefined ? '--tls-cert' : '--tls-key', advice: 'Pass --tls-cert cert.pem and --tls-key key.pem together, or neither for plain HTTP.' });
      const { readFile } = await import('node:fs/promises');
      const pem = async (path: string, flag: string): Promise<Uint8Array> => readFile(path).catch((e: unknown) => {
        throw new CipherMLError('CIPHERML_E_IO', `cannot read ${path}: ${(e as Error).message}`, { param: flag, cause: e });
      });
      const tls = opts.tlsCert === undefined || opts.tlsKey === undefined ? undefined : { cert: await pem(opts.tlsCert, '--tls-cert'), key: await pem(opts.tlsKey, '--tls-key') };
      const { startService } = await import('../service/index.ts');
      const svc = await startService({ dataDir: opts.data, db: opts.db, port: opts.port, host: opts.host, redis: opts.redis, tls, maxBodyBytes: opts.maxBodyMb * 1024 * 1024, refreshTimeoutMs: opts.refreshTimeout * 1000, ...(opts.console ? {} : { console: false as const }) });
      const consoleAt = opts.console ? `; web console at ${svc.url}/` : '';
      process.stdout.write(opts.json === true ? `${JSON.stringify({ url: svc.url, storage: svc.storage.backend, console: opts.console ? `${svc.url}/` : null })}\n` : `cipherml service listening on ${svc.url} (storage ${svc.storage.backend}); docs at ${svc.url}/docs${consoleAt}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void svc.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
  serve
    .command('worker')
    .description('run fit and encrypted-inference jobs from the BullMQ queue (same --data folder, or the same --db PostgreSQL)')
    // Declared on `serve` too: commander gives a flag written after `worker` to the parent, so
    // the value is read from both (optsWithGlobals) and required here, not by commander.
    .option('--redis <url>', 'redis://… of the service (required)')
    .option('--concurrency <n>', 'jobs at once', intOption('--concurrency'), 1)
    .action(async (_local: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ data: string; db?: string; redis?: string; concurrency: number }>();
      if (opts.redis === undefined || opts.redis === '') {
        throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'a queue worker needs the Redis URL of the service', { param: '--redis', advice: 'Pass the same --redis redis://HOST:6379 the service was started with (and the same --data folder or --db URL).' });
      }
      const redis = opts.redis;
      const { startQueueWorker } = await import('../service/index.ts');
      const w = await startQueueWorker({ dataDir: opts.data, db: opts.db }, redis, opts.concurrency);
      process.stderr.write(`cipherml worker: waiting for fit and inference jobs on ${redis}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => void w.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
  const token = serve.command('token').description('bearer tokens and roles of the service');
  const USER = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
  const checkUser = (name: string): void => {
    if (!USER.test(name)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'user names are 1–64 letters, digits, ".", "_", "@" or "-"', { param: '--user' });
  };
  const withStorage = async <T>(cmd: Command, f: (storage: Storage, opts: { data: string; db?: string; json?: boolean }) => Promise<T>): Promise<T> => {
    const opts = cmd.optsWithGlobals<{ data: string; db?: string; json?: boolean }>();
    const { openStorage } = await import('../service/index.ts');
    const storage = await openStorage({ dataDir: opts.data, db: opts.db });
    try {
      return await f(storage, opts);
    } finally {
      await storage.close();
    }
  };
  token
    .command('create')
    .description('print a new token for the user (on the last line), creating the user with --role if new; an existing user keeps its role (see `serve token role`); only its SHA-256 is stored')
    .requiredOption('--user <name>', 'user name')
    .option('--role <role>', 'owner | user, for a new user (default user); must match for an existing one')
    .option('--expires-days <days>', 'the token stops working after this many days (default: never)', intOption('--expires-days'))
    .option('--json', 'print {"user","role","token","expiresAt"}')
    // --data and --db are the `serve` options (commander parses parent options after subcommands too).
    .action(async (_local: unknown, cmd: Command) => {
      const local = cmd.opts<{ user: string; role?: string; expiresDays?: number }>();
      checkUser(local.user);
      if (local.role !== undefined) assertOneOf(local.role, '--role', ['owner', 'user'] as const);
      if (local.expiresDays !== undefined && (local.expiresDays < 1 || local.expiresDays > 3650)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--expires-days must be 1–3650, got ${local.expiresDays}`, { param: '--expires-days' });
      await withStorage(cmd, async (storage, opts) => {
        const existing = await storage.getUser(local.user);
        if (existing !== undefined && local.role !== undefined && existing.role !== local.role) {
          throw new CipherMLError('CIPHERML_E_SERVICE_CONFLICT', `user ${local.user} has role ${existing.role}; change it explicitly with \`cipherml serve token role --user ${local.user} --role ${local.role}\``, { param: '--role' });
        }
        const user = existing ?? (await storage.ensureUser(local.user, (local.role ?? 'user') as Role));
        const expiresAt = local.expiresDays === undefined ? undefined : Date.now() + local.expiresDays * 86_400_000;
        const t = await storage.createToken(user.id, expiresAt === undefined ? {} : { expiresAt });
        const until = expiresAt === undefined ? '' : `, expires ${new Date(expiresAt).toISOString()}`;
        process.stdout.write(opts.json === true ? `${JSON.stringify({ user: user.name, role: user.role, token: t, expiresAt: expiresAt ?? null })}\n` : `token for ${user.name} (${user.role}${until}):\n${t}\n`);
      });
    });
  token
    .command('role')
    .description("change an existing user's role (the only way a role changes)")
    .requiredOption('--user <name>', 'user name')
    .requiredOption('--role <role>', 'owner | user')
    .option('--json', 'print {"user","role"}')
    .action(async (_local: unknown, cmd: Command) => {
      const local = cmd.opts<{ user: string; role: string }>();
      checkUser(local.user);
      assertOneOf(local.role, '--role', ['owner', 'user'] as const);
      await withStorage(cmd, async (storage, opts) => {
        const user = await storage.setRole(local.user, local.role as Role);
        process.stdout.write(opts.json === true ? `${JSON.stringify({ user: user.name, role: user.role })}\n` : `${user.name} now has role ${user.role}\n`);
      });
    });
  token
    .command('list')
    .description('list tokens: id, user, role, created, expiry, status (never the token itself)')
    .option('--json', 'print a JSON array')
    .action(async (_local: unknown, cmd: Command) => {
      await withStorage(cmd, async (storage, opts) => {
        const rows = await storage.listTokens();
        if (opts.json === true) {
          process.stdout.write(`${JSON.stringify(rows)}\n`);
          return;
        }
        const iso = (t: number | null): string => (t === null ? 'never' : new Date(t).toISOString());
        process.stdout.write(`${['id'.padEnd(16), 'user'.padEnd(16), 'role'.padEnd(5), 'created'.padEnd(24), 'expires'.padEnd(24), 'status'].join('  ')}\n`);
        for (const r of rows) process.stdout.write(`${[r.id, r.user.padEnd(16), r.role.padEnd(5), iso(r.createdAt).padEnd(24), iso(r.expiresAt).padEnd(24), r.status].join('  ')}\n`);
      });
    });
  token
    .command('revoke')
    .description('revoke one token (--id from `serve token list`) or every token of a user (--user); effective on the next request')
    .option('--id <id>', 'token id (16 hex characters)')
    .option('--user <name>', 'revoke all tokens of this user')
    .option('--json', 'print {"revoked"}')
    .action(async (_local: unknown, cmd: Command) => {
      const local = cmd.opts<{ id?: string; user?: string }>();
      if (local.user !== undefined) checkUser(local.user);
      await withStorage(cmd, async (storage, opts) => {
        const n = await storage.revokeTokens({ ...(local.id === undefined ? {} : { id: local.id }), ...(local.user === undefined ? {} : { user: local.user }) });
        if (n === 0) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no active token ${local.id !== undefined ? `with id ${local.id}` : `of user ${local.user ?? ''}`}`, { param: local.id !== undefined ? '--id' : '--user' });
        process.stdout.write(opts.json === true ? `${JSON.stringify({ revoked: n })}\n` : `revoked ${n} token(s)\n`);
      });
    });
}
