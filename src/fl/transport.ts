import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { ConnectRouter, Interceptor, Transport } from '@connectrpc/connect';
import { connectNodeAdapter, createGrpcTransport } from '@connectrpc/connect-node';
import { CipherMLError } from '../core/errors.ts';
import { listenError } from '../core/listen.ts';

/**
 * gRPC over HTTP/2 with ConnectRPC. One server serves gRPC, gRPC-Web and the Connect protocol on
 * one port (so a browser could join later); clients speak gRPC. TLS is optional (certificate and
 * key files; a CA file on the client side for self-signed setups). Message sizes are capped on
 * both sides.
 */

/** TLS files of a server (cert + key) or a client (ca). */
export interface TlsFiles {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

/** A running RPC server. */
export interface RpcServer {
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

/** Splits "host:port" (IPv6 in brackets) and validates the port. */
export function parseAddress(address: string, param = 'address'): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(address);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `"${address}" is not host:port`, { param });
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function readTls(path: string, param: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_IO', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { param, cause: e });
  }
}

/**
 * Starts an HTTP/2 server (TLS when cert and key are given) serving the routes.
 *
 * @example
 * ```ts
 * const srv = await startRpcServer({ address: '127.0.0.1:0', routes: (r) => r.service(FederatedService, impl), maxMessageBytes: 64 << 20 });
 * console.log(srv.port);
 * ```
 */
export async function startRpcServer(options: {
  address: string;
  routes: (router: ConnectRouter) => void;
  maxMessageBytes: number;
  tls?: TlsFiles;
  interceptors?: Interceptor[];
}): Promise<RpcServer> {
  const { host, port } = parseAddress(options.address);
  const handler = connectNodeAdapter({
    routes: options.routes,
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }),
  });
  const tls = options.tls;
  const server =
    tls?.cert !== undefined && tls.cert !== '' && tls.key !== undefined && tls.key !== ''
      ? http2.createSecureServer({ cert: readTls(tls.cert, 'tls-cert'), key: readTls(tls.key, 'tls-key'), allowHTTP1: true }, handler)
      : http2.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(e, options.address, 'address')));
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  return {
    port: actual,
    address: `${host.includes(':') ? `[${host}]` : host}:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.close();
        server.close(() => resolve());
        setTimeout(() => {
          for (const s of sessions) s.destroy();
        }, 1000).unref();
      }),
  };
}

/**
 * A gRPC client transport to `address` (https when a CA is given or `secure` is set).
 *
 * @example
 * ```ts
 * const client = createClient(FederatedService, createRpcTransport({ address: 'server:9091', maxMessageBytes: 64 << 20 }));
 * ```
 */
export function createRpcTransport(options: { address: string; maxMessageBytes: number; tls?: TlsFiles; secure?: boolean; interceptors?: Interceptor[] }): Transport {
  const { host, port } = parseAddress(options.address);
  const ca = options.tls?.ca;
  const secure = options.secure === true || (ca !== undefined && ca !== '');
  const h = host.includes(':') ? `[${host}]` : host;
  return createGrpcTransport({
    baseUrl: `${secure ? 'https' : 'http'}://${h}:${port}`,
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    ...(ca !== undefined && ca !== '' ? { nodeOptions: { ca: readTls(ca, 'tls-ca') } } : {}),
    ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }),
  });
}
