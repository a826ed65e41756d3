import { Type } from 'typebox';
import type { TSchema } from 'typebox';
import { PASSWORD_MAX, PASSWORD_MIN } from './password.ts';

/**
 * The console's JSON routes as data, in the shape of the service's route table
 * (src/service/schemas.ts `RouteSpec`): fastify validates with these schemas and the service's
 * OpenAPI document lists them. `session: true` routes need the session cookie (checked in
 * onRequest, before the body is read) and, when they change state, the `X-CSRF-Token` header.
 */

/** One console route. */
export interface ConsoleRouteSpec {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly url: string;
  readonly summary: string;
  /** Bearer token: never (console routes use the session cookie). */
  readonly auth: false;
  /** Needs a signed-in session (cookie) and, for POST/DELETE, the CSRF header. */
  readonly session: boolean;
  readonly body: 'none' | 'json' | 'binary';
  readonly bodyLimit: number;
  readonly params?: TSchema;
  readonly jsonBody?: TSchema;
  readonly ok: { readonly status: 200; readonly schema: TSchema | 'binary' };
}

/** User names: what the service's `serve token create --user` accepts. */
export const USER_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$';
const UserName = Type.String({ pattern: USER_NAME_PATTERN, maxLength: 64 });
const Password = Type.String({ minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX });
const Credentials = Type.Object({ name: UserName, password: Password }, { additionalProperties: false });
const SessionBody = Type.Object({ user: Type.Object({ name: Type.String(), role: Type.Union([Type.Literal('owner'), Type.Literal('user')]) }), csrfToken: Type.String(), expiresAt: Type.Integer() });
const TokenRow = Type.Object({ id: Type.String(), name: Type.String(), createdAt: Type.Integer(), expiresAt: Type.Union([Type.Integer(), Type.Null()]), status: Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('revoked')]) });
/** Token names: short, printable. */
const TokenName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$', maxLength: 64 });

const LIMIT = 4096;
/** Largest sealed key record (a sealed N = 8192 secret key and its public key, base64, in JSON: ≈ 1.6 MB). */
export const KEY_BACKUP_LIMIT: number = 4 << 20;
const NONE = 1024;

/** Every route of the console API. */
export const CONSOLE_ROUTES: readonly ConsoleRouteSpec[] = [
  { method: 'POST', url: '/api/v1/console/signup', summary: 'Create an account (role user) and sign in; sets the session cookie', auth: false, session: false, body: 'json', bodyLimit: LIMIT, jsonBody: Credentials, ok: { status: 200, schema: SessionBody } },
  { method: 'POST', url: '/api/v1/console/signin', summary: 'Sign in (rate-limited per name and per address); sets the session cookie', auth: false, session: false, body: 'json', bodyLimit: LIMIT, jsonBody: Credentials, ok: { status: 200, schema: SessionBody } },
  { method: 'POST', url: '/api/v1/console/signout', summary: 'End the session (needs X-CSRF-Token)', auth: false, session: true, body: 'none', bodyLimit: NONE, ok: { status: 200, schema: Type.Object({ signedOut: Type.Literal(true) }) } },
  { method: 'GET', url: '/api/v1/console/session', summary: "The signed-in user and the session's CSRF token", auth: false, session: true, body: 'none', bodyLimit: NONE, ok: { status: 200, schema: SessionBody } },
  { method: 'GET', url: '/api/v1/console/tokens', summary: "The user's API tokens (never the token itself)", auth: false, session: true, body: 'none', bodyLimit: NONE, ok: { status: 200, schema: Type.Object({ tokens: Type.Array(TokenRow) }) } },
  {
    method: 'POST', url: '/api/v1/console/tokens', summary: 'Create a named API token with an expiry; the token is in this response only', auth: false, session: true, body: 'json', bodyLimit: LIMIT,
    jsonBody: Type.Object({ name: TokenName, expiresDays: Type.Integer({ minimum: 1, maximum: 365 }) }, { additionalProperties: false }),
    ok: { status: 200, schema: Type.Object({ id: Type.String(), name: Type.String(), token: Type.String(), expiresAt: Type.Integer() }) },
  },
  {
    method: 'PUT', url: '/api/v1/console/keys', summary: "Keep a copy of the browser's passphrase-sealed key record (opaque bytes; the service cannot open it)", auth: false, session: true, body: 'binary', bodyLimit: KEY_BACKUP_LIMIT,
    ok: { status: 200, schema: Type.Object({ stored: Type.Literal(true), size: Type.Integer({ minimum: 1 }), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) }) },
  },
  { method: 'GET', url: '/api/v1/console/keys', summary: 'The sealed key record kept by PUT (404 when none)', auth: false, session: true, body: 'none', bodyLimit: NONE, ok: { status: 200, schema: 'binary' } },
  { method: 'DELETE', url: '/api/v1/console/tokens/:id', summary: 'Revoke one of your tokens (effective on its next request)', auth: false, session: true, body: 'none', bodyLimit: NONE, params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) }), ok: { status: 200, schema: Type.Object({ revoked: Type.Literal(true) }) } },
];
