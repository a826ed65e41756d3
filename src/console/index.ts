/**
 * cipherml/console — the web console's server side: accounts (scrypt), sessions (httpOnly,
 * SameSite=Strict cookies with a CSRF token), named API tokens, security headers, and the
 * prebuilt browser app. The service registers it (src/service/server.ts); the trusted gateway
 * never imports it.
 *
 * Not a package subpath of its own: the service serves it.
 *
 * @example
 * ```ts
 * import { startService } from 'cipherml/service';
 * const svc = await startService({ dataDir: 'data', port: 8080 }); // console at http://127.0.0.1:8080/
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { registerConsole } from './routes.ts';
export type { ConsoleHandle, ConsoleOptions } from './routes.ts';
export { CONSOLE_ROUTES, USER_NAME_PATTERN } from './schemas.ts';
export type { ConsoleRouteSpec } from './schemas.ts';
export { CSP, CSRF_HEADER, DEFAULT_RATE_LIMITS, SECURITY_HEADERS, SESSION_COOKIE, RateLimiter } from './security.ts';
export type { RateLimits } from './security.ts';
export { KDF_CONCURRENCY, PASSWORD_MAX, PASSWORD_MIN, SCRYPT_COST, hashPassword, verifyPassword } from './password.ts';
export { ConsoleStore, MAX_ACTIVE_TOKENS } from './store.ts';
export type { ConsoleDb, ConsoleUser, ServiceTokens, Session } from './store.ts';
export { defaultStaticDir } from './static.ts';
