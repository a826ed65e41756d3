import type { Socket } from 'node:net';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseJsonBounded } from '../core/bounded.ts';
import { CipherMLError, isCipherMLError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';
import { JSON_BODY_LIMIT, JSON_MAX_DEPTH } from './schemas.ts';

/**
 * The hardened HTTP front of the service: typed error bodies for every status (including the
 * 414/431 that fastify and Node answer themselves), bounded JSON, and a connection that is
 * closed instead of drained when a request is refused before its body was read.
 */

/** HTTP status of each error code the service answers with (400 for every other code). */
export const STATUS: Partial<Record<ErrorCode, number>> = {
  CIPHERML_E_SERVICE_UNAUTHENTICATED: 401,
  CIPHERML_E_SERVICE_FORBIDDEN: 403,
  CIPHERML_E_SERVICE_NOT_FOUND: 404,
  CIPHERML_E_SERVICE_CONFLICT: 409,
  CIPHERML_E_JOB_ACTIVE: 409,
  CIPHERML_E_PAYLOAD_TOO_LARGE: 413,
  CIPHERML_E_URI_TOO_LONG: 414,
  CIPHERML_E_SERVICE_BUSY: 429,
  CIPHERML_E_HEADERS_TOO_LARGE: 431,
  CIPHERML_E_STORAGE: 500,
  CIPHERML_E_WORKER_FAILED: 500,
};

/** Longest path parameter (model and version names are ≤ 64 characters); longer is a 414. */
export const MAX_PARAM_LENGTH = 128;
/** Largest request head (request line and headers); larger is a 431. */
export const MAX_HEADER_BYTES: number = 16 << 10;

function typedBody(e: CipherMLError): string {
  return JSON.stringify({ error: e.toJSON() });
}

/** Maps anything thrown in a request to a typed error. */
export function toServiceError(error: unknown): CipherMLError {
  if (isCipherMLError(error)) return error;
  const fe = error as Partial<FastifyError> & { validation?: readonly { instancePath?: string; params?: Record<string, unknown>; message?: string }[]; validationContext?: string };
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new CipherMLError('CIPHERML_E_PAYLOAD_TOO_LARGE', 'the request body exceeds the limit of this route', { param: 'body' });
  if (fe.validation !== undefined) {
    const v = fe.validation[0];
    const path = (v?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
    const missing = v?.params?.['missingProperty'];
    const extra = v?.params?.['additionalProperty'];
    const field = typeof missing === 'string' ? missing : typeof extra === 'string' ? (path === '' ? extra : `${path}.${extra}`) : path;
    const what = typeof extra === 'string' ? `unknown field ${JSON.stringify(extra)}` : (v?.message ?? 'is invalid');
    return new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${fe.validationContext ?? 'request'}${field === '' ? '' : ` field ${field}`}: ${what}`, { param: field === '' ? (fe.validationContext ?? 'body') : field });
  }
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' || fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${fe.message ?? 'bad body'}: JSON routes take application/json, uploads application/octet-stream`, { param: 'Content-Type' });
  }
  if (fe.statusCode !== undefined && fe.statusCode < 500) return new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', fe.message ?? 'bad request', { param: 'request' });
  return new CipherMLError('CIPHERML_E_STORAGE', fe.message ?? 'internal error', { param: 'service' });
}

/** Sends a typed error; a refused request whose body was not read closes its connection. */
export function sendError(req: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const e = toServiceError(error);
  const status = STATUS[e.code] ?? 400;
  const pendingBody = req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0' || req.headers['transfer-encoding'] !== undefined;
  if (pendingBody && (status === 401 || status === 413 || status === 414 || status === 429)) void reply.header('connection', 'close');
  if (status === 429) void reply.header('retry-after', '1');
  return reply.code(status).type('application/json; charset=utf-8').send(typedBody(e));
}

function clientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new CipherMLError('CIPHERML_E_HEADERS_TOO_LARGE', `the request line and headers exceed ${MAX_HEADER_BYTES} bytes`, { param: 'headers' })
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the request was not completed in time', { param: 'request' })
        : new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'malformed HTTP request', { param: 'request' });
  const status = e.code === 'CIPHERML_E_HEADERS_TOO_LARGE' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const body = typedBody(e);
  socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Options of {@link createHttpApp}. */
export interface HttpAppOptions {
  /** Largest body of any route (per-route limits are set on the routes). */
  readonly bodyLimit: number;
  /** Internal naive baseline: fastify's own JSON parser (no depth limit). */
  readonly naiveJson?: boolean;
  /** PEM certificate chain and private key: the app serves HTTPS (TLS from Node's defaults, 1.2 or later). */
  readonly tls?: { readonly cert: Uint8Array; readonly key: Uint8Array } | undefined;
}

/**
 * A fastify instance with typed errors everywhere, bounded JSON (size and depth, before
 * `JSON.parse`), raw octet-stream bodies, and closed-world request validation (unknown fields
 * are refused, not silently removed).
 *
 * @example
 * ```ts
 * const app = createHttpApp({ bodyLimit: 256 << 20 });
 * ```
 */
export function createHttpApp(options: HttpAppOptions): FastifyInstance {
  const server = options.tls === undefined ? { http: { maxHeaderSize: MAX_HEADER_BYTES } } : { https: { cert: Buffer.from(options.tls.cert), key: Buffer.from(options.tls.key), maxHeaderSize: MAX_HEADER_BYTES, minVersion: 'TLSv1.2' as const } };
  const app = Fastify({
    bodyLimit: options.bodyLimit,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    ...server,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    clientErrorHandler: clientError,
    frameworkErrors: (error, req, reply) => {
      const e =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new CipherMLError('CIPHERML_E_URI_TOO_LONG', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`, { param: 'url' })
          : new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `malformed URL: ${error.message}`, { param: 'url' });
      void sendError(req, reply, e);
    },
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  if (options.naiveJson !== true) {
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: JSON_BODY_LIMIT }, (_req, body, done) => {
      try {
        const bytes = body as Buffer;
        done(null, bytes.length === 0 ? undefined : parseJsonBounded(bytes, 'body', { maxBytes: JSON_BODY_LIMIT, maxDepth: JSON_MAX_DEPTH }));
      } catch (e) {
        done(e as Error, undefined);
      }
    });
  }
  app.setErrorHandler((error: unknown, req: FastifyRequest, reply: FastifyReply) => sendError(req, reply, error));
  app.setNotFoundHandler((req, reply) => sendError(req, reply, new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no route ${req.method} ${req.url.slice(0, 200)}`, { param: 'url' })));
  return app;
}
