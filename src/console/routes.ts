import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { defences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import { hashPassword, SCRYPT_COST, verifyPassword } from './password.ts';
import { CONSOLE_ROUTES } from './schemas.ts';
import type { ConsoleRouteSpec } from './schemas.ts';
import { CSRF_HEADER, DEFAULT_RATE_LIMITS, RateLimiter, SECURITY_HEADERS, SESSION_COOKIE, checkOrigin, readCookie, sameToken, sessionCookie } from './security.ts';
import type { RateLimits } from './security.ts';
import { registerStatic } from './static.ts';
import { ConsoleStore } from './store.ts';
import type { ConsoleDb, ServiceTokens, Session } from './store.ts';

/** Options of {@link registerConsole}. */
export interface ConsoleOptions {
  /** The database the console tables live in (the service's SQLite file or PostgreSQL). */
  readonly db: ConsoleDb;
  /** The service's user and token store. */
  readonly service: ServiceTokens;
  /** Session lifetime in ms (default 8 hours; absolute, not sliding). */
  readonly sessionTtlMs?: number;
  /** Sign-in and sign-up limits (default {@link DEFAULT_RATE_LIMITS}). */
  readonly limits?: Partial<RateLimits>;
  /** Clock (tests move it to expire sessions and rate-limit windows). */
  readonly now?: () => number;
  /** Folder of the built browser app (default: the one shipped in the package). */
  readonly staticDir?: string;
  /** scrypt cost of new password hashes (default {@link SCRYPT_COST}; stored with each hash). */
  readonly scryptCost?: { readonly N: number; readonly r: number; readonly p: number };
}

const DEFAULT_SESSION_TTL_MS = 8 * 3_600_000;

/** What the service gets back from {@link registerConsole}. */
export interface ConsoleHandle {
  /**
   * The signed-in console user of a request that carries no `Authorization` header, so that the
   * browser app can call the REST API with its session: undefined without a valid session
   * cookie; CIPHERML_E_SERVICE_FORBIDDEN for a state-changing request without the session's
   * CSRF token or from another origin.
   */
  sessionUser(req: FastifyRequest): Promise<Session['user'] | undefined>;
}

/**
 * Registers the web console on the service's fastify instance: the browser app at `/`, the
 * account, session and token routes under `/api/v1/console/` ({@link CONSOLE_ROUTES}), and the
 * security headers on every response. Call before the service's own routes are added.
 *
 * @example
 * ```ts
 * await registerConsole(app, { db: consoleDb, service: storage });
 * ```
 */
export async function registerConsole(app: FastifyInstance, options: ConsoleOptions): Promise<ConsoleHandle> {
  const now = options.now ?? Date.now;
  const ttl = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const limits: RateLimits = { ...DEFAULT_RATE_LIMITS, ...options.limits };
  const limiter = new RateLimiter(limits, now);
  const store = await ConsoleStore.open(options.db, options.service, now);
  const cost = options.scryptCost ?? SCRYPT_COST;
  // Unknown names are checked against this hash so that a miss costs the same KDF as a hit
  // (made now, off the event loop, so that the first miss is not slower than later ones).
  let dummy: Promise<string> | undefined = hashPassword('no such account', cost);
  dummy.catch(() => (dummy = undefined));

  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (k !== 'content-security-policy' || defences.consoleCsp) void reply.header(k, v);
    return payload;
  });

  const sessions = new WeakMap<FastifyRequest, { session: Session; cookie: string }>();
  const requireSession = async (req: FastifyRequest): Promise<void> => {
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    const session = cookie === undefined ? undefined : await store.session(cookie);
    if (session === undefined || cookie === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_UNAUTHENTICATED', cookie === undefined ? 'not signed in' : 'the session expired or was ended', { param: 'cookie', advice: 'Sign in again at / (sessions last a fixed time and end at sign-out).' });
    if (req.method !== 'GET' && defences.consoleCsrf) {
      checkOrigin(req.headers.origin, req.headers.host);
      const sent = req.headers[CSRF_HEADER];
      if (typeof sent !== 'string' || !sameToken(sent, session.csrf)) throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', 'missing or wrong CSRF token', { param: 'X-CSRF-Token', advice: "Send the session's csrfToken (from sign-in or GET /api/v1/console/session) in the X-CSRF-Token header." });
    }
    sessions.set(req, { session, cookie });
  };
  const sessionOf = (req: FastifyRequest): { session: Session; cookie: string } => {
    const s = sessions.get(req);
    if (s === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_UNAUTHENTICATED', 'not signed in', { param: 'cookie' });
    return s;
  };
  const startSession = async (req: FastifyRequest, reply: FastifyReply, user: Session['user']): Promise<unknown> => {
    const s = await store.createSession(user, ttl);
    void reply.header('set-cookie', sessionCookie(s.cookie, ttl / 1000, req.protocol === 'https'));
    return { user: { name: user.name, role: user.role }, csrfToken: s.csrf, expiresAt: s.expiresAt };
  };

  type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  const handlers: Record<string, Handler> = {
    'POST /api/v1/console/signup': async (req, reply) => {
      const { name, password } = req.body as { name: string; password: string };
      const keys = [`signup:${req.ip}`];
      limiter.check(keys, [limits.signupsPerAddress], 'sign-ups from this address');
      limiter.hit(keys);
      const user = await store.createAccount(name, await hashPassword(password, cost));
      return startSession(req, reply, user);
    },
    'POST /api/v1/console/signin': async (req, reply) => {
      const { name, password } = req.body as { name: string; password: string };
      const keys = [`name:${name}`, `addr:${req.ip}`];
      if (defences.consoleSignInLimit) limiter.check(keys, [limits.failuresPerName, limits.failuresPerAddress], 'failed sign-ins');
      const account = await store.account(name);
      const ok = await verifyPassword(password, account?.passwordHash ?? (await (dummy ??= hashPassword('no such account', cost))));
      if (account === undefined || !ok) {
        limiter.hit(keys);
        throw new CipherMLError('CIPHERML_E_SERVICE_UNAUTHENTICATED', 'wrong user name or password', { param: 'password', advice: `Check the name and password; after ${limits.failuresPerName} failures the name is locked for ${Math.round(limits.windowMs / 60_000)} minutes.` });
      }
      limiter.reset(`name:${name}`);
      return startSession(req, reply, account.user);
    },
    'POST /api/v1/console/signout': async (req, reply) => {
      await store.deleteSession(sessionOf(req).cookie);
      void reply.header('set-cookie', sessionCookie('', 0, req.protocol === 'https'));
      return { signedOut: true };
    },
    'GET /api/v1/console/session': async (req) => {
      const { session } = sessionOf(req);
      return { user: { name: session.user.name, role: session.user.role }, csrfToken: session.csrf, expiresAt: session.expiresAt };
    },
    'GET /api/v1/console/tokens': async (req) => ({ tokens: await store.listTokens(sessionOf(req).session.user) }),
    'POST /api/v1/console/tokens': async (req) => {
      const { name, expiresDays } = req.body as { name: string; expiresDays: number };
      const expiresAt = now() + expiresDays * 86_400_000;
      const t = await store.createToken(sessionOf(req).session.user, name, expiresAt);
      return { id: t.id, name, token: t.token, expiresAt };
    },
    'PUT /api/v1/console/keys': async (req) => {
      if (!Buffer.isBuffer(req.body) || req.body.length === 0) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'send the sealed key record with Content-Type: application/octet-stream', { param: 'body' });
      const info = await store.putKeyBackup(sessionOf(req).session.user, new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength));
      return { stored: true, size: info.size, sha256: info.sha256 };
    },
    'GET /api/v1/console/keys': async (req, reply) => {
      const bytes = await store.getKeyBackup(sessionOf(req).session.user);
      if (bytes === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'no key record kept on the service', { param: 'keys', advice: 'Generate keys on the Keys page with "keep a sealed copy on the service" checked.' });
      return reply.header('cache-control', 'no-store').type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
    'DELETE /api/v1/console/tokens/:id': async (req) => {
      await store.revokeToken(sessionOf(req).session.user, (req.params as { id: string }).id);
      return { revoked: true };
    },
  };

  for (const spec of CONSOLE_ROUTES as readonly ConsoleRouteSpec[]) {
    const handler = handlers[`${spec.method} ${spec.url}`];
    if (handler === undefined) throw new Error(`no console handler for ${spec.method} ${spec.url}`);
    app.route({
      method: spec.method,
      url: spec.url,
      bodyLimit: spec.bodyLimit,
      schema: { ...(spec.params === undefined ? {} : { params: spec.params }), ...(spec.jsonBody === undefined ? {} : { body: spec.jsonBody }), ...(spec.ok.schema === 'binary' ? {} : { response: { [spec.ok.status]: spec.ok.schema } }) },
      onRequest: spec.session ? requireSession : async (req) => (defences.consoleCsrf ? checkOrigin(req.headers.origin, req.headers.host) : undefined),
      handler,
    });
  }
  await registerStatic(app, options.staticDir);
  return {
    sessionUser: async (req) => {
      const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
      const session = cookie === undefined ? undefined : await store.session(cookie);
      if (session === undefined) return undefined;
      if (req.method !== 'GET' && req.method !== 'HEAD' && defences.consoleCsrf) {
        checkOrigin(req.headers.origin, req.headers.host);
        const sent = req.headers[CSRF_HEADER];
        if (typeof sent !== 'string' || !sameToken(sent, session.csrf)) throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', 'missing or wrong CSRF token', { param: 'X-CSRF-Token', advice: "A console session calling the REST API sends the session's csrfToken in the X-CSRF-Token header on every state-changing request." });
      }
      return session.user;
    },
  };
}
