import { createHash, randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Buffer as WebBuffer, Bytes } from '../../web/src/platform/buffer.ts';
import { createHash as webHash } from '../../web/src/platform/crypto.ts';
import { crc32 as webCrc32, zstdCompressSync, zstdDecompressSync } from '../../web/src/platform/zlib.ts';

/**
 * The browser build's stand-ins for Node built-ins (web/src/platform/) against Node's own: the
 * console's envelopes must be byte-compatible with the service's (CRC-32, SHA-256 fingerprints,
 * zstd bodies both ways). The end-to-end proof is the browser test (test/slow/console-browser.test.ts).
 */
describe('browser platform shims', () => {
  it('SHA-256 equals node:crypto on known answers and random inputs across block boundaries', () => {
    expect(webHash('sha256').update('abc').digest().toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 1000, 100_003]) {
      const b = randomBytes(n);
      const split = Math.floor(n / 3);
      const web = webHash('sha256').update('cipherml-ckks-v1').update(b.subarray(0, split)).update(b.subarray(split)).digest();
      expect(web.toString('hex')).toBe(createHash('sha256').update('cipherml-ckks-v1').update(b).digest('hex'));
    }
  });

  it('CRC-32 equals node:zlib', () => {
    for (const n of [0, 1, 28, 4096, 70_001]) {
      const b = randomBytes(n);
      expect(webCrc32(b)).toBe(zlib.crc32(b));
    }
  });

  it('zstd: raw-block frames decompress in node:zlib; node:zlib level-1 frames decompress in the shim; a frame declaring more than the cap is refused', () => {
    for (const n of [0, 1, 131_071, 131_072, 131_073, 1_000_000]) {
      const b = randomBytes(n);
      expect(Buffer.from(zlib.zstdDecompressSync(zstdCompressSync(b))).equals(b)).toBe(true);
      const packed = zlib.zstdCompressSync(Buffer.concat([b, Buffer.alloc(n)]), { params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } });
      expect(Buffer.from(zstdDecompressSync(packed, { maxOutputLength: 2 * n + 1 })).equals(Buffer.concat([b, Buffer.alloc(n)]))).toBe(true);
    }
    const bomb = zlib.zstdCompressSync(Buffer.alloc(10 << 20));
    expect(() => zstdDecompressSync(bomb, { maxOutputLength: 1 << 20 })).toThrow(expect.objectContaining({ code: 'ERR_BUFFER_TOO_LARGE' }));
  });

  it('Buffer subset: the little-endian readers equal Node\'s at every offset, and refuse reads past the end', () => {
    const raw = randomBytes(64);
    const node = Buffer.from(raw);
    const web = WebBuffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let o = 0; o + 8 <= raw.length; o++) {
      expect([web.readUInt16LE(o), web.readUInt32LE(o), web.readInt32LE(o), web.readBigInt64LE(o), web.readFloatLE(o), web.readDoubleLE(o)]).toEqual([node.readUInt16LE(o), node.readUInt32LE(o), node.readInt32LE(o), node.readBigInt64LE(o), node.readFloatLE(o), node.readDoubleLE(o)]);
    }
    expect(() => web.readDoubleLE(60)).toThrow(RangeError);
    expect(() => node.readDoubleLE(60)).toThrow(RangeError);
  });

  it('Buffer subset: the little-endian writers equal Node\'s and refuse values or offsets that do not fit', () => {
    const node = Buffer.alloc(16);
    const web = WebBuffer.alloc(16);
    for (const [v, o] of [[0, 0], [0xffff, 3], [0x1234, 14]] as const) expect(web.writeUInt16LE(v, o)).toBe(node.writeUInt16LE(v, o));
    for (const [v, o] of [[0, 5], [0xffffffff, 9], [0x04034b50, 12]] as const) expect(web.writeUInt32LE(v, o)).toBe(node.writeUInt32LE(v, o));
    expect(web.toString('hex')).toBe(node.toString('hex'));
    expect(() => web.writeUInt16LE(0x10000, 0)).toThrow(RangeError);
    expect(() => web.writeUInt32LE(-1, 0)).toThrow(RangeError);
    expect(() => web.writeUInt32LE(1, 13)).toThrow(RangeError);
    expect(() => node.writeUInt32LE(1, 13)).toThrow(RangeError);
  });

  it('Buffer subset: hex, latin1, utf8 round trips as Node', () => {
    const b = randomBytes(40);
    expect(WebBuffer.from(b).toString('hex')).toBe(b.toString('hex'));
    expect(WebBuffer.from(b.toString('hex'), 'hex').toString('latin1')).toBe(b.toString('latin1'));
    expect(WebBuffer.from('CPML', 'ascii').toString('hex')).toBe(Buffer.from('CPML', 'ascii').toString('hex'));
    expect(WebBuffer.from(JSON.stringify({ a: 'é' }), 'utf8').toString('utf8')).toBe('{"a":"é"}');
    expect(WebBuffer.byteLength('é€', 'utf8')).toBe(Buffer.byteLength('é€', 'utf8'));
    // subarray keeps the type (species), as src/ckks/context.ts's fingerprint relies on.
    const sub = WebBuffer.from(b).subarray(2, 6) as Bytes;
    expect(sub).toBeInstanceOf(Bytes);
    expect(sub.toString('hex')).toBe(b.subarray(2, 6).toString('hex'));
    expect((webHash('sha256').update('x').digest().subarray(0, 16) as Bytes).toString('hex')).toBe(createHash('sha256').update('x').digest().subarray(0, 16).toString('hex'));
  });
});
