import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { assertOneOf } from '../core/guards.ts';
import { intOption, portOption } from './options.ts';

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
    .action(async (opts: { port: number; host: string; data: string; db?: string; redis?: string; maxBodyMb: number; json?: boolean }) => {
      const { startService } = await import('../service/index.ts');
      const svc = await startService({ dataDir: opts.data, db: opts.db, port: opts.port, host: opts.host, redis: opts.redis, maxBodyBytes: opts.maxBodyMb * 1024 * 1024 });
      process.stdout.write(opts.json === true ? `${JSON.stringify({ url: svc.url, storage: svc.storage.backend })}\n` : `cipherml service listening on ${svc.url} (storage ${svc.storage.backend}); docs at ${svc.url}/docs\n`);
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
    .description('run fit jobs from the BullMQ queue (same --data folder, or the same --db PostgreSQL)')
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
      process.stderr.write(`cipherml worker: waiting for fit jobs on ${redis}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => void w.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
  const token = serve.command('token').description('bearer tokens of the service');
  token
    .command('create')
    .description('create the user if needed and print a new token (on the last line); only its SHA-256 is stored')
    .requiredOption('--user <name>', 'user name')
    .option('--role <role>', 'owner | user', 'user')
    .option('--json', 'print {"user","role","token"}')
    // --data and --db are the `serve` options (commander parses parent options after subcommands too).
    .action(async (_local: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ user: string; role: string; data: string; db?: string; json?: boolean }>();
      assertOneOf(opts.role, '--role', ['owner', 'user'] as const);
      if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(opts.user)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'user names are 1–64 letters, digits, ".", "_", "@" or "-"', { param: '--user' });
      const { openStorage } = await import('../service/index.ts');
      const storage = await openStorage({ dataDir: opts.data, db: opts.db });
      try {
        const user = await storage.ensureUser(opts.user, opts.role);
        const t = await storage.createToken(user.id);
        process.stdout.write(opts.json === true ? `${JSON.stringify({ user: user.name, role: user.role, token: t })}\n` : `token for ${user.name} (${user.role}):\n${t}\n`);
      } finally {
        await storage.close();
      }
    });
}
