import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { ConnectRouter, Interceptor, Transport } from '@connectrpc/connect';
import { connectNodeAdapter, createGrpcTransport } from '@connectrpc/connect-node';
import { CipherMLError } from '../core/errors.ts';
import { listenError } from '../core/listen.ts';

/**
 * gRPC over HTTP/2 with ConnectRPC. One server serves gRPC, gRPC-Web and the Connect protocol on
 * one port (so a browser could join later); clients speak gRPC. Message sizes are capped on both
 * sides.
 *
 * Transport security invariant: TLS unless the peer address is loopback or the party was started
 * with `--insecure-plaintext`.
 * - A listening party needs tls-cert and tls-key; with tls-ca as well it requires and verifies a
 *   client certificate (mutual TLS).
 * - A connecting party verifies the server against tls-ca, or against the system roots when
 *   tls-ca is empty (an empty tls-ca never means plaintext); with tls-cert and tls-key it
 *   presents a client certificate.
 * - Plaintext to or on a non-loopback address without the flag is INSECURE_TRANSPORT.
 */

/** TLS files: a server's cert + key (+ ca for mutual TLS), a client's ca (+ cert + key). */
export interface TlsFiles {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

/**
 * True for 127.0.0.0/8, ::1 and localhost: the only hosts plaintext is allowed to without a flag.
 *
 * @example
 * ```ts
 * isLoopbackHost('127.0.0.1'); // true
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

const given = (s: string | undefined): s is string => s !== undefined && s !== '';

/** The label every progress line of a party running plaintext off loopback carries. */
export const INSECURE_PLAINTEXT_LABEL = '[INSECURE PLAINTEXT]';

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
  /** Allow plaintext on a non-loopback address (--insecure-plaintext). */
  insecurePlaintext?: boolean;
  interceptors?: Interceptor[];
}): Promise<RpcServer> {
  const { host } = parseAddress(options.address);
  const handler = connectNodeAdapter({
    routes: options.routes,
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }),
  });
  const tls = options.tls;
  const secure = given(tls?.cert) && given(tls.key);
  if (!secure && !isLoopbackHost(host) && options.insecurePlaintext !== true) {
    throw new CipherMLError('CIPHERML_E_INSECURE_TRANSPORT', `refusing to serve plaintext on non-loopback address ${options.address}: give tls-cert and tls-key`, { param: 'tls-cert', details: { address: options.address } });
  }
  const mutual = secure && given(tls.ca);
  const server = secure
    ? http2.createSecureServer(
        { cert: readTls(tls.cert!, 'tls-cert'), key: readTls(tls.key!, 'tls-key'), allowHTTP1: true, ...(mutual ? { ca: readTls(tls.ca!, 'tls-ca'), requestCert: true, rejectUnauthorized: true } : {}) },
        handler,
      )
    : http2.createServer(handler);
  const listener = await listenHttp2(server, options.address);
  return { port: listener.port, address: listener.address, close: listener.close };
}

/**
 * Listens on `address` (host:port) and tracks the server's HTTP/2 sessions, so that `close`
 * ends them: each session is asked to close and destroyed after 1 s, then the server closes.
 * The one listener of the runtime's gRPC servers (this file and src/enclave).
 *
 * @example
 * ```ts
 * const { address, close } = await listenHttp2(http2.createServer(handler), '127.0.0.1:0');
 * ```
 */
export async function listenHttp2(server: http2.Http2Server | http2.Http2SecureServer, address: string): Promise<{ port: number; address: string; close: () => Promise<void> }> {
  const { host, port } = parseAddress(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(e, address, 'address')));
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => {
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
 * Whether a connection to `address` uses TLS: yes unless the host is loopback (and no TLS file
 * or `secure` was given) or `insecurePlaintext` is set. An empty tls-ca never means plaintext.
 *
 * @example
 * ```ts
 * usesTls('server.example:9091', { tls: { ca: '' } }); // true: system roots
 * ```
 */
export function usesTls(address: string, options: { tls?: TlsFiles; secure?: boolean; insecurePlaintext?: boolean } = {}): boolean {
  const { host } = parseAddress(address);
  if (options.secure === true || given(options.tls?.ca) || given(options.tls?.cert)) return true;
  return !(isLoopbackHost(host) || options.insecurePlaintext === true);
}

/**
 * A gRPC client transport to `address`: TLS (verified against tls-ca, or the system roots when it
 * is empty; a client certificate when tls-cert and tls-key are given) unless the host is loopback
 * or `insecurePlaintext` is set.
 *
 * @example
 * ```ts
 * const client = createClient(FederatedService, createRpcTransport({ address: 'server.example:9091', maxMessageBytes: 64 << 20, tls: { ca: 'ca.pem' } }));
 * ```
 */
export function createRpcTransport(options: { address: string; maxMessageBytes: number; tls?: TlsFiles; secure?: boolean; insecurePlaintext?: boolean; interceptors?: Interceptor[] }): Transport {
  const { host, port } = parseAddress(options.address);
  const tls = options.tls;
  const secure = usesTls(options.address, options);
  if (given(tls?.cert) !== given(tls?.key)) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', 'a client certificate needs both tls-cert and tls-key', { param: given(tls?.cert) ? 'tls-key' : 'tls-cert' });
  }
  const nodeOptions = {
    ...(given(tls?.ca) ? { ca: readTls(tls.ca, 'tls-ca') } : {}),
    ...(given(tls?.cert) && given(tls.key) ? { cert: readTls(tls.cert, 'tls-cert'), key: readTls(tls.key, 'tls-key') } : {}),
  };
  const h = host.includes(':') ? `[${host}]` : host;
  return createGrpcTransport({
    baseUrl: `${secure ? 'https' : 'http'}://${h}:${port}`,
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    ...(secure && Object.keys(nodeOptions).length > 0 ? { nodeOptions } : {}),
    ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }),
  });
}
