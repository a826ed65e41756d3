import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { defences } from '../core/defences.ts';
import { CipherMLError, isCipherMLError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';
import { Gateway } from './gateway.ts';

/** Options of {@link startGatewayServer}. */
export interface GatewayServerOptions {
  readonly service: string;
  /** Bearer token of the service (the gateway's user there). */
  readonly token: string;
  readonly keyDir: string;
  readonly port?: number;
  /** A loopback address (default 127.0.0.1): the gateway holds secret keys; any other address is refused. */
  readonly host?: string;
  /** Bearer token callers of this server must send; default: 32 random bytes, see {@link RunningGatewayServer.localToken}. */
  readonly localToken?: string;
}

/** A running local gateway server. */
export interface RunningGatewayServer {
  readonly url: string;
  /** The token every request must carry as `Authorization: Bearer <localToken>`. */
  readonly localToken: string;
  close(): Promise<void>;
}

/** HTTP status of the typed errors this server answers with (400 for every other code). */
const STATUS: Partial<Record<ErrorCode, number>> = {
  CIPHERML_E_GATEWAY_UNAUTHENTICATED: 401,
  CIPHERML_E_GATEWAY_HOST_REFUSED: 421,
  CIPHERML_E_SERVICE_UNAUTHENTICATED: 502,
  CIPHERML_E_PEER_UNAVAILABLE: 502,
  CIPHERML_E_SERVICE_FORBIDDEN: 403,
  CIPHERML_E_SERVICE_NOT_FOUND: 404,
  CIPHERML_E_JOB_ACTIVE: 409,
  CIPHERML_E_SERVICE_CONFLICT: 409,
  CIPHERML_E_PAYLOAD_TOO_LARGE: 413,
  CIPHERML_E_KEY_FILE_INSECURE: 500,
  CIPHERML_E_INTERNAL: 500,
};

function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${key} must be a non-empty string`, { param: key });
  return v;
}

/** 127.0.0.0/8, ::1 and `localhost`: the only addresses the gateway listens on. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

function typed(error: unknown): CipherMLError {
  if (isCipherMLError(error)) return error;
  const fe = error as Partial<FastifyError>;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new CipherMLError('CIPHERML_E_PAYLOAD_TOO_LARGE', 'the request body exceeds 256 MiB', { param: 'body' });
  if (fe.statusCode !== undefined && fe.statusCode < 500) return new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', fe.message ?? 'bad request', { param: 'body' });
  return new CipherMLError('CIPHERML_E_INTERNAL', (error as Error).message, { param: 'gateway', cause: error });
}

/**
 * The gateway's local HTTP server with the reference's calls: `POST /keys/generate/model`
 * (`{model}` → new keys kept locally, public context uploaded), `POST /encrypt/data/fit`
 * (`{model, features, labels}` as CSV text → ciphertext container) and
 * `POST /encrypt/data/predict` (`{model, features}` → ciphertext container).
 *
 * It holds secret keys, so: it listens on loopback only; every request needs the local bearer
 * token (checked in `onRequest`, before the body is read; a web page cannot add the header to a
 * cross-origin request without a CORS preflight, which is never granted); a request whose `Host`
 * is not this server's own loopback address is refused (421), so a page on a rebound DNS name
 * cannot reach it; every error is a typed body `{error: {code, message, param}}`.
 *
 * @example
 * ```ts
 * const gw = await startGatewayServer({ service: 'http://127.0.0.1:8080', token, keyDir: 'keys', port: 8090 });
 * await fetch(`${gw.url}/keys/generate/model`, { method: 'POST', headers: { authorization: `Bearer ${gw.localToken}`, 'content-type': 'application/json' }, body: '{"model":"lr/1"}' });
 * ```
 */
export async function startGatewayServer(o: GatewayServerOptions): Promise<RunningGatewayServer> {
  const host = o.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the gateway holds secret keys and listens on loopback only (127.0.0.1, ::1 or localhost), not ${host}`, { param: '--host' });
  const localToken = o.localToken ?? randomBytes(32).toString('base64url');
  if (localToken.length < 16) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the local token needs at least 16 characters', { param: '--local-token-env' });
  const expected = Buffer.from(`Bearer ${localToken}`);
  const app: FastifyInstance = Fastify({ bodyLimit: 256 * 1024 * 1024 });
  let port = 0;
  const gw = (model: string): Gateway => new Gateway({ service: o.service, token: o.token, model, keyDir: o.keyDir });
  const send = (reply: FastifyReply, error: unknown): FastifyReply => {
    const e = typed(error);
    return reply.code(STATUS[e.code] ?? 400).type('application/json; charset=utf-8').send(JSON.stringify({ error: e.toJSON() }));
  };
  app.setErrorHandler((error: unknown, _req: FastifyRequest, reply: FastifyReply) => send(reply, error));
  app.setNotFoundHandler((req, reply) => send(reply, new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `no route ${req.method} ${req.url.slice(0, 200)}: the gateway answers POST /keys/generate/model, /encrypt/data/fit and /encrypt/data/predict`, { param: 'url' })));
  app.addHook('onRequest', async (req, reply) => {
    // DNS rebinding: a page's request carries the page's host name; only our own address passes.
    const allowed = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${host}:${port}`];
    if (defences.gatewayHostCheck && !allowed.includes((req.headers.host ?? '').toLowerCase())) {
      void reply.header('connection', 'close');
      throw new CipherMLError('CIPHERML_E_GATEWAY_HOST_REFUSED', `Host ${JSON.stringify((req.headers.host ?? '').slice(0, 100))} is not this gateway (${allowed[0]})`, { param: 'Host' });
    }
    const got = Buffer.from(req.headers.authorization ?? '');
    if (defences.gatewayToken && (got.length !== expected.length || !timingSafeEqual(got, expected))) {
      void reply.header('connection', 'close');
      throw new CipherMLError('CIPHERML_E_GATEWAY_UNAUTHENTICATED', req.headers.authorization === undefined ? 'missing local bearer token' : 'wrong local bearer token', { param: 'Authorization' });
    }
  });
  app.post('/keys/generate/model', async (req) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    return gw(str(body, 'model')).generateKeys();
  });
  app.post('/encrypt/data/fit', async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const batch = body['batchSize'];
    const r = await gw(str(body, 'model')).encryptFitData(str(body, 'features'), str(body, 'labels'), typeof batch === 'number' ? batch : undefined);
    return reply.type('application/octet-stream').header('x-cipherml-rows', String(r.rows)).send(Buffer.from(r.bytes));
  });
  app.post('/encrypt/data/predict', async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const bytes = await gw(str(body, 'model')).encryptPredictData(str(body, 'features'));
    return reply.type('application/octet-stream').send(Buffer.from(bytes));
  });
  const url = await app.listen({ port: o.port ?? 0, host });
  port = (app.server.address() as { port: number }).port;
  return { url, localToken, close: () => app.close() };
}
