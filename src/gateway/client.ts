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

  constructor(base: string, token: string) {
    this.base = base.replace(/\/+$/, '');
    this.#token = token;
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
      res = await fetch(`${this.base}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
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
