import { request } from 'node:http';

/** One raw HTTP exchange: what a hostile client sends, with lying headers allowed. */
export async function rawRequest(url: string, options: { method: string; headers?: Record<string, string>; body?: Uint8Array | string; endBody?: boolean }): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        req.destroy();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    // A client that declares a huge body and never sends it: the answer must not wait for it.
    if (options.endBody !== false) req.end();
  });
}

/** The typed error code of a JSON error body, or `untyped: …`. */
export function errorCode(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { code?: string } };
    return j.error?.code ?? `untyped: ${body.slice(0, 120)}`;
  } catch {
    return `untyped: ${body.slice(0, 120)}`;
  }
}
