// A namespace import: zstd exists from Node.js 23.8; a named import would fail at link time on
// older Node.js before core/node-version.ts could explain why.
import * as nodeZlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { CipherMLError } from './errors.ts';

/**
 * Parsers bounded by what the caller expects, never by what the input declares: JSON with a
 * depth and size limit checked before `JSON.parse` runs, and decompression whose output buffer
 * is capped at the size the caller expects (a 16 KB zstd frame declaring 512 MiB is refused
 * after at most `cap` bytes of output, not after allocating the declared size).
 */

/** Limits of {@link parseJsonBounded}. */
export interface JsonLimits {
  /** Largest accepted text in UTF-8 bytes. */
  readonly maxBytes: number;
  /** Deepest accepted nesting of arrays and objects (a scalar has depth 0, `[]` depth 1). */
  readonly maxDepth: number;
}

/** Default JSON limits for request bodies and small files: 1 MiB, depth 32. */
export const DEFAULT_JSON_LIMITS: JsonLimits = { maxBytes: 1 << 20, maxDepth: 32 };

/**
 * Nesting depth of a JSON text, scanned without recursion (strings and escapes are skipped);
 * stops early and returns `limit + 1` once the depth passes `limit`.
 *
 * @example
 * ```ts
 * jsonDepth('{"a":[1,[2]]}', 64); // 3
 * ```
 */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * `JSON.parse` after checking the size and nesting depth, so a 5,000-deep body is a typed
 * `CIPHERML_E_JSON_INVALID` and never a stack overflow. `__proto__` keys are dropped.
 *
 * @example
 * ```ts
 * parseJsonBounded('{"batchSize":32}', 'body'); // { batchSize: 32 }
 * parseJsonBounded('['.repeat(5000), 'body');   // throws CIPHERML_E_JSON_INVALID (depth)
 * ```
 */
export function parseJsonBounded(input: string | Uint8Array, param: string, limits: JsonLimits = DEFAULT_JSON_LIMITS): unknown {
  const bytes = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.length;
  if (bytes > limits.maxBytes) {
    throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `${bytes} bytes of JSON exceed the limit of ${limits.maxBytes}`, { param, details: { limit: limits.maxBytes, actual: bytes } });
  }
  const text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  const depth = jsonDepth(text, limits.maxDepth);
  if (depth > limits.maxDepth) {
    throw new CipherMLError('CIPHERML_E_JSON_INVALID', `JSON nests deeper than ${limits.maxDepth} levels`, { param, details: { maxDepth: limits.maxDepth } });
  }
  try {
    return JSON.parse(text, (k, v: unknown) => (k === '__proto__' ? undefined : v)) as unknown;
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_JSON_INVALID', `not valid JSON: ${(e as Error).message}`, { param, cause: e });
  }
}

/** Codecs {@link decompressBounded} reads (`deflate-raw`: RFC 1951, as in ZIP members). */
export type Codec = 'zstd' | 'gzip' | 'deflate-raw';

/** What the caller expects of a compressed body. */
export interface DecompressLimits {
  /** Exact decompressed size expected (e.g. a header's declared length, already checked against `cap`). */
  readonly expectedBytes: number;
  /** Largest size the caller could ever accept here (derived from keys, shapes or the route). */
  readonly cap: number;
}

function checkDeclared(limits: DecompressLimits, param: string): void {
  if (!Number.isSafeInteger(limits.expectedBytes) || limits.expectedBytes < 0 || limits.expectedBytes > limits.cap) {
    throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `the body declares ${limits.expectedBytes} decompressed bytes; at most ${limits.cap} are possible here`, {
      param,
      details: { declared: limits.expectedBytes, cap: limits.cap },
    });
  }
}

function sizeError(actual: number | string, expected: number, param: string, cause?: unknown): CipherMLError {
  return new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `the body decompresses to ${actual} bytes, its header says ${expected}`, { param, ...(cause === undefined ? {} : { cause }) });
}

/**
 * Decompresses `bytes`, refusing before any allocation a declared size above `cap`, and stopping
 * the codec at `expectedBytes` (+1, to see an overrun): output memory never exceeds the size the
 * caller expects, whatever the frame claims.
 *
 * @example
 * ```ts
 * const raw = decompressBounded(packed, 'zstd', { expectedBytes: n, cap: 64 << 20 }, 'body');
 * ```
 */
export function decompressBounded(bytes: Uint8Array, codec: Codec, limits: DecompressLimits, param: string): Uint8Array {
  checkDeclared(limits, param);
  const maxOutputLength = limits.expectedBytes + 1;
  let raw: Uint8Array;
  try {
    raw =
      codec === 'zstd'
        ? nodeZlib.zstdDecompressSync(bytes, { maxOutputLength })
        : codec === 'gzip'
          ? nodeZlib.gunzipSync(bytes, { maxOutputLength })
          : nodeZlib.inflateRawSync(bytes, { maxOutputLength });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw sizeError(`more than ${limits.expectedBytes}`, limits.expectedBytes, param, e);
    throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `the ${codec} body does not decompress: ${(e as Error).message}`, { param, cause: e });
  }
  if (raw.length !== limits.expectedBytes) throw sizeError(raw.length, limits.expectedBytes, param);
  return raw;
}

/**
 * {@link decompressBounded} on the libuv thread pool, streamed: the event loop only collects
 * chunks, and the stream is destroyed as soon as the output passes `expectedBytes`.
 *
 * @example
 * ```ts
 * const raw = await decompressBoundedAsync(packed, 'zstd', { expectedBytes: n, cap: 64 << 20 }, 'body');
 * ```
 */
export async function decompressBoundedAsync(bytes: Uint8Array, codec: Codec, limits: DecompressLimits, param: string): Promise<Uint8Array> {
  checkDeclared(limits, param);
  const stream: Transform = codec === 'zstd' ? nodeZlib.createZstdDecompress() : codec === 'gzip' ? nodeZlib.createGunzip() : nodeZlib.createInflateRaw();
  const out = new Uint8Array(limits.expectedBytes);
  let n = 0;
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    const fail = (e: CipherMLError): void => {
      if (settled) return;
      settled = true;
      stream.destroy();
      reject(e);
    };
    stream.on('data', (chunk: Buffer) => {
      if (n + chunk.length > limits.expectedBytes) {
        fail(sizeError(`more than ${limits.expectedBytes}`, limits.expectedBytes, param));
        return;
      }
      out.set(chunk, n);
      n += chunk.length;
    });
    stream.on('error', (e) => fail(new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `the ${codec} body does not decompress: ${e.message}`, { param, cause: e })));
    stream.on('end', () => {
      if (settled) return;
      settled = true;
      if (n !== limits.expectedBytes) reject(sizeError(n, limits.expectedBytes, param));
      else resolve(out);
    });
    stream.end(bytes);
  });
}

/**
 * Gunzips `bytes` when they start with the gzip magic (RFC 1952), otherwise returns them as they
 * are. The output size expected is the trailer's ISIZE (the uncompressed length mod 2^32), refused
 * above `cap` before decompressing; decompression then stops at ISIZE + 1 bytes, so a bomb whose
 * trailer lies costs at most that much memory.
 *
 * @example
 * ```ts
 * const raw = gunzipBounded(await readFile('t10k-images-idx3-ubyte.gz'), 64 << 20, '--data');
 * ```
 */
export function gunzipBounded(bytes: Uint8Array, cap: number, param: string): Uint8Array {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  if (bytes.length < 18) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `a gzip stream of ${bytes.length} bytes is shorter than its header and trailer`, { param });
  const isize = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(bytes.length - 4, true);
  return decompressBounded(bytes, 'gzip', { expectedBytes: isize, cap }, param);
}
