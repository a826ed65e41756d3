import { request as httpsRequest } from 'node:https';
import { CipherMLError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';

/**
 * A small typed client of the service's REST API (bearer token, JSON or binary bodies); a
 * service error comes back as the same {@link CipherMLError} code the service sent.
 *
 * @example
 * ```ts
 * const c = new ServiceClient('http://127.0.0.1:8080', token);
 * await c.json('GET', '/api/v1/info/version');
 * ```
 */
export class ServiceClient {
  readonly base: string;
  readonly #token: string;
  readonly #ca: Uint8Array | undefined;

  /** `options.ca`: PEM certificate(s) the service's TLS certificate must chain to (`--tls-ca`), instead of the system roots. */
  constructor(base: string, token: string, options: { readonly ca?: Uint8Array | undefined } = {}) {
    this.base = base.replace(/\/+$/, '');
    this.#token = token;
    this.#ca = options.ca;
    if (this.#ca !== undefined && !this.base.startsWith('https://')) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--tls-ca needs an https:// service URL, got ${this.base}`, { param: '--tls-ca' });
  }

  /** fetch, or with a private CA node:https (fetch takes no CA without the undici package). */
  async #fetch(url: string, init: { method: string; headers: Record<string, string>; body?: string | Uint8Array<ArrayBuffer> }): Promise<Response> {
    const ca = this.#ca;
    if (ca === undefined) return fetch(url, init);
    return new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(url, { method: init.method, headers: init.headers, ca: Buffer.from(ca) }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 502;
          const body = [101, 204, 205, 304].includes(status) ? null : Buffer.concat(parts);
          resolve(new Response(body, { status, headers: Object.entries(res.headers).flatMap(([k, v]) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, x]))) }));
        });
      });
      req.on('error', reject);
      req.end(init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : Buffer.from(init.body.buffer, init.body.byteOffset, init.body.byteLength));
    });
  }

  async #send(method: string, path: string, body: Uint8Array | Record<string, unknown> | undefined): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    let payload: string | Uint8Array<ArrayBuffer> | undefined;
    if (body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream';
      payload = new Uint8Array(body);
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res: Response;
    try {
      res = await this.#fetch(`${this.base}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    } catch (e) {
      throw new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `cannot reach the service at ${this.base}: ${(e as Error).message}`, { param: 'service', cause: e });
    }
    if (!res.ok) {
      const text = await res.text();
      let parsed: { error?: { code?: string; message?: string; param?: string } } = {};
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch {
        // not JSON: reported below with the status
      }
      const e = parsed.error;
      if (e?.code !== undefined && e.message !== undefined) throw CipherMLError.revive({ code: e.code as ErrorCode, message: e.message, param: e.param });
      throw new CipherMLError('CIPHERML_E_PROTOCOL', `${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`, { param: 'service' });
    }
    return res;
  }

  /** A JSON request; resolves with the parsed JSON answer. */
  async json<T = Record<string, unknown>>(method: string, path: string, body?: Record<string, unknown>): Promise<T> {
    return (await (await this.#send(method, path, body)).json()) as T;
  }

  /** Uploads bytes (PUT or POST) and returns the JSON answer. */
  async upload(method: 'PUT' | 'POST', path: string, bytes: Uint8Array): Promise<Record<string, unknown>> {
    return (await (await this.#send(method, path, bytes)).json()) as Record<string, unknown>;
  }

  /** A request whose answer is bytes. */
  async bytes(method: string, path: string, body?: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await (await this.#send(method, path, body)).arrayBuffer());
  }
}
