import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CipherMLError, isCipherMLError } from '../core/errors.ts';
import { Gateway } from './gateway.ts';

/** Options of {@link startGatewayServer}. */
export interface GatewayServerOptions {
  readonly service: string;
  readonly token: string;
  readonly keyDir: string;
  readonly port?: number;
  /** Default 127.0.0.1: the gateway holds secret keys and should not listen on other interfaces. */
  readonly host?: string;
}

/** A running local gateway server. */
export interface RunningGatewayServer {
  readonly url: string;
  close(): Promise<void>;
}

function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${key} must be a non-empty string`, { param: key });
  return v;
}

/**
 * The gateway's local HTTP server with the reference's calls: `POST /keys/generate/model`
 * (`{model}` → new keys kept locally, public context uploaded), `POST /encrypt/data/fit`
 * (`{model, features, labels}` as CSV text → ciphertext container) and
 * `POST /encrypt/data/predict` (`{model, features}` → ciphertext container). A malformed CSV
 * answers 400 `CIPHERML_E_CSV_INVALID` naming the line.
 *
 * @example
 * ```ts
 * const gw = await startGatewayServer({ service: 'http://127.0.0.1:8080', token, keyDir: 'keys', port: 8090 });
 * ```
 */
export async function startGatewayServer(o: GatewayServerOptions): Promise<RunningGatewayServer> {
  const app: FastifyInstance = Fastify({ bodyLimit: 256 * 1024 * 1024 });
  const gw = (model: string): Gateway => new Gateway({ service: o.service, token: o.token, model, keyDir: o.keyDir });
  app.setErrorHandler((error: unknown, _req: FastifyRequest, reply: FastifyReply) => {
    const e = isCipherMLError(error) ? error : new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', (error as Error).message, { param: 'body' });
    const status = e.code === 'CIPHERML_E_PEER_UNAVAILABLE' ? 502 : e.code === 'CIPHERML_E_SERVICE_UNAUTHENTICATED' ? 401 : e.code === 'CIPHERML_E_SERVICE_FORBIDDEN' ? 403 : e.code === 'CIPHERML_E_SERVICE_NOT_FOUND' ? 404 : 400;
    void reply.code(status).send({ error: e.toJSON() });
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
  const url = await app.listen({ port: o.port ?? 0, host: o.host ?? '127.0.0.1' });
  return { url, close: () => app.close() };
}
