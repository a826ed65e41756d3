import { constants, crc32, createDeflateRaw, createInflateRaw, deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CipherMLError } from '../core/errors.ts';
import { readArrays, readNpy, readZip, writeNpy, writeZip } from './npy.ts';

// Hostile .npy / .npz inputs (issue 13): every one is refused with a typed error naming the
// parameter, and none makes the process allocate what it declares. Memory is shown by the peak
// RSS (getrusage maxRSS, a high-water mark): a bomb a naive reader would expand to 256 MiB may
// raise it by at most 64 MiB. (The peak can only hide growth, never invent it.)

const MiB = 1 << 20;
const peakMb = (): number => process.resourceUsage().maxRSS / 1024;

function typed(f: () => unknown, code: string, param: RegExp): CipherMLError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CipherMLError);
    expect((e as CipherMLError).code).toBe(code);
    expect((e as CipherMLError).param ?? '').toMatch(param);
    return e as CipherMLError;
  }
  throw new Error(`expected ${code}`);
}

/** Raw deflate of `n` zero bytes, streamed (never holds `n` bytes). */
async function deflatedZeros(n: number): Promise<Buffer> {
  const z = createDeflateRaw({ level: constants.Z_BEST_COMPRESSION });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => z.on('end', r));
  const zero = Buffer.alloc(MiB);
  for (let left = n; left > 0; left -= MiB) if (!z.write(zero.subarray(0, Math.min(MiB, left)))) await new Promise((r) => z.once('drain', r));
  z.end();
  await done;
  return Buffer.concat(out);
}

/** Bytes a raw-deflate stream really inflates to, counted while streaming. */
async function inflatedSize(b: Uint8Array): Promise<number> {
  const z = createInflateRaw();
  let n = 0;
  z.on('data', (c: Buffer) => (n += c.length));
  const done = new Promise((r) => z.on('end', r));
  z.end(b);
  await done;
  return n;
}

interface Member {
  readonly name: string;
  readonly data: Uint8Array;
  readonly method: 0 | 8;
  readonly usize: number;
  readonly crc: number;
  /** Local-header offset override (to make members overlap). */
  readonly at?: number;
}

/** A ZIP archive with the members exactly as given (sizes and CRCs may lie). */
function zip(members: readonly Member[]): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const nm = Buffer.from(m.name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(m.method, 8);
    lh.writeUInt32LE(m.crc, 14);
    lh.writeUInt32LE(m.data.length, 18);
    lh.writeUInt32LE(m.usize, 22);
    lh.writeUInt16LE(nm.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(m.method, 10);
    ch.writeUInt32LE(m.crc, 16);
    ch.writeUInt32LE(m.data.length, 20);
    ch.writeUInt32LE(m.usize, 24);
    ch.writeUInt16LE(nm.length, 28);
    ch.writeUInt32LE(m.at ?? offset, 42);
    central.push(ch, nm);
    if (m.at === undefined) {
      parts.push(lh, nm, Buffer.from(m.data));
      offset += 30 + nm.length + m.data.length;
    }
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}

/** A .npy file whose header says `shape` but which carries `body` bytes. */
function npyWithShape(shape: string, body: number, descr = '<f8'): Uint8Array {
  const header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`.padEnd(118, ' ') + '\n';
  const out = Buffer.alloc(10 + header.length + body);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  return out;
}

describe('readNpy against hostile headers', () => {
  it('refuses a shape declaring 2^40 elements before allocating, naming the parameter', () => {
    const before = peakMb();
    const e = typed(() => readNpy(npyWithShape('(1099511627776,)', 16), '--input'), 'CIPHERML_E_INPUT_TOO_LARGE', /^--input$/);
    expect(e.message).toMatch(/more than 67108864 elements/);
    expect(peakMb() - before).toBeLessThan(64);
  });

  it('refuses a shape the data bytes do not hold (10^7 float64 declared, 8 bytes present)', () => {
    const before = peakMb();
    typed(() => readNpy(npyWithShape('(10000000,)', 8), 'calibration'), 'CIPHERML_E_FORMAT_TRUNCATED', /^calibration$/);
    expect(peakMb() - before).toBeLessThan(64);
  });

  it('honours a caller limit derived from the model (maxElements)', () => {
    const ok = writeNpy({ dims: [1, 784], data: new Float64Array(784) });
    expect(readNpy(ok, 'input', { maxElements: 784 }).dims).toEqual([1, 784]);
    typed(() => readNpy(ok, 'input', { maxElements: 783 }), 'CIPHERML_E_INPUT_TOO_LARGE', /^input$/);
  });

  it('refuses malformed shapes, versions and header lengths with typed errors', () => {
    typed(() => readNpy(npyWithShape('(-1,)', 8)), 'CIPHERML_E_FORMAT_CORRUPT', /npy/);
    typed(() => readNpy(npyWithShape("('a',)", 8)), 'CIPHERML_E_FORMAT_CORRUPT', /npy/);
    typed(() => readNpy(npyWithShape('(99999999999999999999,)', 8)), 'CIPHERML_E_FORMAT_CORRUPT', /npy/);
    typed(() => readNpy(npyWithShape('(2,)', 24)), 'CIPHERML_E_FORMAT_CORRUPT', /npy/); // trailing bytes
    const v9 = Uint8Array.from(npyWithShape('(1,)', 8));
    v9[6] = 9;
    typed(() => readNpy(v9), 'CIPHERML_E_FORMAT_UNSUPPORTED', /npy/);
    const v2 = Buffer.alloc(12 + 16);
    v2.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]);
    v2.writeUInt32LE(0xfffffff0, 8); // a 4 GiB header
    typed(() => readNpy(v2), 'CIPHERML_E_FORMAT_CORRUPT', /npy/);
  });

  it('every prefix and every single-byte corruption of a valid file parses or gives a typed error', () => {
    const valid = writeNpy({ dims: [3, 5], data: Float64Array.from({ length: 15 }, (_, i) => i / 7) });
    fc.assert(
      fc.property(fc.nat(valid.length), fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), (cut, at, byte) => {
        const mutated = Uint8Array.from(valid);
        mutated[at] = byte;
        for (const input of [valid.subarray(0, cut), mutated]) {
          try {
            const t = readNpy(input, 'input');
            expect(t.data.length).toBeLessThanOrEqual(input.length);
          } catch (e) {
            expect(e).toBeInstanceOf(CipherMLError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('readZip / readArrays against zip bombs', () => {
  it('stops a member that inflates past the size its directory entry declares (256 MiB behind 100 bytes)', async () => {
    const bomb = await deflatedZeros(256 * MiB);
    expect(await inflatedSize(bomb)).toBe(256 * MiB); // the bomb is real: a naive inflate makes 256 MiB
    const archive = zip([{ name: 'x.npy', data: bomb, method: 8, usize: 100, crc: 0 }]);
    const before = peakMb();
    typed(() => readArrays(archive, '--calibration-data-path'), 'CIPHERML_E_FORMAT_CORRUPT', /^--calibration-data-path$/);
    expect(peakMb() - before).toBeLessThan(64);
  });

  it('refuses members declaring more than the caller accepts before inflating any', async () => {
    const bomb = await deflatedZeros(8 * MiB);
    const before = peakMb();
    const honest = zip([{ name: 'x.npy', data: bomb, method: 8, usize: 8 * MiB, crc: 0 }]);
    typed(() => readZip(honest, 'calibration', { maxBytes: 4 * MiB }), 'CIPHERML_E_INPUT_TOO_LARGE', /^calibration$/);
    const huge = zip([{ name: 'x.npy', data: bomb, method: 8, usize: 0xfffffffe, crc: 0 }]);
    typed(() => readZip(huge, 'calibration'), 'CIPHERML_E_INPUT_TOO_LARGE', /^calibration$/);
    // Many members, each under the limit, together above it.
    const many = zip(Array.from({ length: 40 }, (_, i) => ({ name: `m${i}.npy`, data: bomb.subarray(0, 16), method: 8 as const, usize: 16 * MiB, crc: 0 })));
    typed(() => readZip(many, 'calibration', { maxBytes: 512 * MiB }), 'CIPHERML_E_INPUT_TOO_LARGE', /^calibration$/);
    expect(peakMb() - before).toBeLessThan(64);
  });

  it('refuses overlapping members (a non-recursive bomb) and too many members', () => {
    const data = deflateRawSync(Buffer.alloc(1024));
    const crc = crc32(Buffer.alloc(1024));
    const overlapping = zip([{ name: 'a.npy', data, method: 8, usize: 1024, crc }, ...Array.from({ length: 50 }, (_, i) => ({ name: `b${i}.npy`, data, method: 8 as const, usize: 1024, crc, at: 0 }))]);
    typed(() => readZip(overlapping, 'zip'), 'CIPHERML_E_FORMAT_CORRUPT', /^zip$/);
    const many = zip(Array.from({ length: 20 }, (_, i) => ({ name: `m${i}`, data: new Uint8Array(0), method: 0 as const, usize: 0, crc: 0 })));
    typed(() => readZip(many, 'zip', { maxMembers: 10 }), 'CIPHERML_E_INPUT_TOO_LARGE', /^zip$/);
  });

  it('refuses a stored member whose sizes disagree, duplicate names and a directory outside the archive', () => {
    const data = Buffer.from('abcd');
    typed(() => readZip(zip([{ name: 'a', data, method: 0, usize: 1 << 30, crc: crc32(data) }])), 'CIPHERML_E_FORMAT_CORRUPT', /zip/);
    typed(() => readZip(zip([{ name: 'a', data, method: 0, usize: 4, crc: crc32(data) }, { name: 'a', data, method: 0, usize: 4, crc: crc32(data) }])), 'CIPHERML_E_FORMAT_CORRUPT', /zip/);
    const moved = Buffer.from(zip([{ name: 'a', data, method: 0, usize: 4, crc: crc32(data) }]));
    moved.writeUInt32LE(0x7fffffff, moved.length - 22 + 16);
    typed(() => readZip(moved), 'CIPHERML_E_FORMAT_CORRUPT', /zip/);
  });

  it('every truncation of a real archive gives a typed error, and the whole archive still reads', () => {
    const a = writeZip(new Map([['x.npy', writeNpy({ dims: [2, 2], data: Float64Array.of(1, 2, 3, 4) })], ['y.npy', writeNpy({ dims: [1], data: Float64Array.of(5) })]]));
    expect(readArrays(a).map((t) => t.dims)).toEqual([[2, 2], [1]]);
    for (let cut = 0; cut < a.length; cut++) {
      try {
        readArrays(a.subarray(0, cut), 'input');
      } catch (e) {
        expect(e).toBeInstanceOf(CipherMLError);
        continue;
      }
      throw new Error(`a ${cut}-byte prefix parsed`);
    }
  });
});
