import { gzipSync, zstdCompressSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decompressBounded, decompressBoundedAsync, jsonDepth, parseJsonBounded } from './bounded.ts';
import { isCipherMLError } from './errors.ts';

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return isCipherMLError(e) ? e.code : 'untyped';
  }
  return undefined;
};

describe('parseJsonBounded', () => {
  it('refuses 5,000-deep JSON with a typed error instead of overflowing the stack', () => {
    expect(codeOf(() => parseJsonBounded('['.repeat(5000) + ']'.repeat(5000), 'body'))).toBe('CIPHERML_E_JSON_INVALID');
    expect(codeOf(() => parseJsonBounded('{"a":'.repeat(40) + '1' + '}'.repeat(40), 'body'))).toBe('CIPHERML_E_JSON_INVALID');
    expect(codeOf(() => parseJsonBounded('x'.repeat(100), 'body', { maxBytes: 10, maxDepth: 4 }))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(codeOf(() => parseJsonBounded('{', 'body'))).toBe('CIPHERML_E_JSON_INVALID');
  });
  it('agrees with JSON.parse within the limits, and counts brackets in strings as text', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        const text = JSON.stringify(v);
        // `__proto__` keys are dropped by design (checked below), so JSON.parse differs there.
        fc.pre(!text.includes('"__proto__"'));
        expect(parseJsonBounded(text, 'body', { maxBytes: 1 << 20, maxDepth: 8 })).toEqual(JSON.parse(text));
      }),
      { numRuns: 200 },
    );
    expect(jsonDepth('["[[[[", {"a": "{{{"}]', 8)).toBe(2);
    expect(parseJsonBounded('{"__proto__": {"x": 1}, "a": 2}', 'body')).toEqual({ a: 2 });
  });
});

describe('decompressBounded', () => {
  const bomb = zstdCompressSync(Buffer.alloc(64 << 20));
  it('refuses a declared size above the cap before decompressing', () => {
    expect(bomb.length).toBeLessThan(16 << 10);
    expect(codeOf(() => decompressBounded(bomb, 'zstd', { expectedBytes: 64 << 20, cap: 1 << 20 }, 'body'))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
  });
  it('stops the codec at the expected size when the frame holds more than declared', () => {
    expect(codeOf(() => decompressBounded(bomb, 'zstd', { expectedBytes: 1000, cap: 1 << 20 }, 'body'))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    expect(codeOf(() => decompressBounded(gzipSync(Buffer.alloc(1 << 20)), 'gzip', { expectedBytes: 1000, cap: 1 << 20 }, 'body'))).toBe('CIPHERML_E_FORMAT_CORRUPT');
  });
  it('round-trips, sync and streamed', async () => {
    const raw = Buffer.from('cipherml '.repeat(1000));
    expect(Buffer.from(decompressBounded(zstdCompressSync(raw), 'zstd', { expectedBytes: raw.length, cap: raw.length }, 'b')).equals(raw)).toBe(true);
    expect(Buffer.from(await decompressBoundedAsync(gzipSync(raw), 'gzip', { expectedBytes: raw.length, cap: raw.length }, 'b')).equals(raw)).toBe(true);
    await expect(decompressBoundedAsync(bomb, 'zstd', { expectedBytes: 4096, cap: 1 << 20 }, 'b')).rejects.toMatchObject({ code: 'CIPHERML_E_FORMAT_CORRUPT' });
    await expect(decompressBoundedAsync(Uint8Array.of(1, 2, 3), 'zstd', { expectedBytes: 3, cap: 10 }, 'b')).rejects.toMatchObject({ code: 'CIPHERML_E_FORMAT_CORRUPT' });
  });
});
