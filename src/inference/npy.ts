import { crc32 } from 'node:zlib';
import { decompressBounded } from '../core/bounded.ts';
import { CipherMLError } from '../core/errors.ts';
import type { Tensor } from './onnx.ts';

/**
 * NumPy `.npy` (format versions 1–3, numpy/lib/format.py) and `.npz` (a ZIP archive of .npy
 * members, PKWARE APPNOTE 6.3 §4.3: stored or deflate entries, no ZIP64) — just enough for model
 * inputs and calibration sets. Little-endian float32/float64/int32/int64/uint8, C order.
 *
 * Bounded (issue 13): a header's shape is checked against the bytes actually present before the
 * array is allocated; a ZIP's central directory is checked whole (member count, sizes against
 * {@link ArrayLimits}, members inside the archive and not overlapping) before any member is
 * inflated, and each member inflates with its output capped at the size the directory declares
 * (so a 1 KB member claiming 1 KB but inflating to 1 GB stops after 1 KB + 1 byte).
 */

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
const DTYPES = { '<f4': 4, '<f8': 8, '<i4': 4, '<i8': 8, '|u1': 1, '<u1': 1 } as const;
type Dtype = keyof typeof DTYPES;

/** Limits of {@link readNpy}, {@link readZip} and {@link readArrays}. */
export interface ArrayLimits {
  /** Largest element count of one array (each becomes 8 bytes of Float64Array). */
  readonly maxElements: number;
  /** Largest total of the members' uncompressed sizes in a ZIP/.npz. */
  readonly maxBytes: number;
  /** Most members in a ZIP/.npz. */
  readonly maxMembers: number;
}

/** Default limits: 2^26 elements (512 MiB as float64) per array, 512 MiB and 1,024 members per archive. */
export const DEFAULT_ARRAY_LIMITS: ArrayLimits = { maxElements: 1 << 26, maxBytes: 512 << 20, maxMembers: 1024 };

/** numpy's own reader refuses headers above 10,000 bytes (`max_header_size`); v1 headers are < 65,536. */
const MAX_HEADER = 1 << 16;

function limitsOf(l: Partial<ArrayLimits>): ArrayLimits {
  return { ...DEFAULT_ARRAY_LIMITS, ...l };
}

/** Element count of a declared shape, refused unless every entry is a non-negative integer and the product is at most `max`. */
function shapeCount(shape: string, max: number, param: string): { dims: number[]; n: number } {
  const parts = shape.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const dims: number[] = [];
  let n = 1;
  for (const part of parts) {
    if (!/^\d{1,16}L?$/.test(part)) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `.npy shape entry ${JSON.stringify(part.slice(0, 32))} is not a non-negative integer`, { param });
    const d = Number.parseInt(part, 10);
    dims.push(d);
    n *= d;
    if (n > max) {
      throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `.npy shape (${parts.slice(0, 8).join(', ')}${parts.length > 8 ? ', …' : ''}) declares more than ${max} elements`, {
        param,
        details: { limit: max },
        advice: `Give ${param} an array of the model's input shape; if it is genuine, raise maxElements.`,
      });
    }
  }
  return { dims, n };
}

/**
 * Parses one .npy file. The declared shape must match the data bytes exactly and hold at most
 * `limits.maxElements` elements; both are checked before the output array is allocated.
 *
 * @example
 * ```ts
 * const { dims, data } = readNpy(await readFile('input.npy'));
 * ```
 */
export function readNpy(bytes: Uint8Array, param = 'npy', limits: Partial<ArrayLimits> = {}): Tensor {
  const { maxElements } = limitsOf(limits);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 10 || !b.subarray(0, 6).equals(MAGIC)) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a .npy file (magic bytes)', { param });
  const major = b[6]!;
  if (major < 1 || major > 3) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `.npy format version ${major} (1–3 are read)`, { param });
  if (major > 1 && b.length < 12) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', '.npy header cut off', { param });
  const headerLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (headerLen > MAX_HEADER) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `.npy header declares ${headerLen} bytes (at most ${MAX_HEADER})`, { param });
  if (b.length < start + headerLen) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', '.npy header cut off', { param });
  const header = b.subarray(start, start + headerLen).toString('latin1');
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `unreadable .npy header ${JSON.stringify(header.slice(0, 200))}`, { param });
  if (!(descr in DTYPES)) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `.npy dtype ${descr} (supported: ${Object.keys(DTYPES).join(', ')})`, { param });
  if (fortran === 'True') throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'Fortran-ordered .npy arrays (save with np.ascontiguousarray)', { param });
  const { dims, n } = shapeCount(shape, maxElements, param);
  const width = DTYPES[descr as Dtype];
  const body = start + headerLen;
  // The declared shape is held against the bytes present before anything is allocated.
  if (b.length - body !== n * width) {
    throw new CipherMLError(b.length - body < n * width ? 'CIPHERML_E_FORMAT_TRUNCATED' : 'CIPHERML_E_FORMAT_CORRUPT', `.npy data holds ${b.length - body} bytes, shape [${dims.join(', ')}] of ${descr} needs ${n * width}`, {
      param,
      details: { expected: n * width, actual: b.length - body },
    });
  }
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = body + i * width;
    switch (descr as Dtype) {
      case '<f4': data[i] = b.readFloatLE(o); break;
      case '<f8': data[i] = b.readDoubleLE(o); break;
      case '<i4': data[i] = b.readInt32LE(o); break;
      case '<i8': data[i] = Number(b.readBigInt64LE(o)); break;
      default: data[i] = b[o]!;
    }
  }
  return { dims, data };
}

/**
 * Writes a float32 (default) or float64 .npy file (format 1.0).
 *
 * @example
 * ```ts
 * await writeFile('output.npy', writeNpy({ dims: [1, 10], data: scores }));
 * ```
 */
export function writeNpy(t: Tensor, dtype: '<f4' | '<f8' = '<f4'): Uint8Array {
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const width = dtype === '<f4' ? 4 : 8;
  const out = Buffer.alloc(10 + header.length + t.data.length * width);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  const body = 10 + header.length;
  t.data.forEach((v, i) => (width === 4 ? out.writeFloatLE(v, body + 4 * i) : out.writeDoubleLE(v, body + 8 * i)));
  return out;
}

interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly crc: number;
  readonly csize: number;
  readonly usize: number;
  readonly dataStart: number;
}

function zipError(code: 'CIPHERML_E_FORMAT_CORRUPT' | 'CIPHERML_E_FORMAT_TRUNCATED' | 'CIPHERML_E_FORMAT_UNSUPPORTED', message: string, param: string): CipherMLError {
  return new CipherMLError(code, message, { param });
}

/** The central directory, checked whole against `limits` and the archive's own extent. */
function zipDirectory(b: Buffer, limits: ArrayLimits, param: string): ZipEntry[] {
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 65535); i--) {
    if (b.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw zipError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a ZIP archive (no end-of-central-directory record)', param);
  const [disk, cdDisk, onDisk, count] = [b.readUInt16LE(eocd + 4), b.readUInt16LE(eocd + 6), b.readUInt16LE(eocd + 8), b.readUInt16LE(eocd + 10)];
  const cdSize = b.readUInt32LE(eocd + 12);
  const cdStart = b.readUInt32LE(eocd + 16);
  if (disk !== 0 || cdDisk !== 0 || onDisk !== count) throw zipError('CIPHERML_E_FORMAT_UNSUPPORTED', 'multi-part ZIP archives', param);
  if (count === 0xffff || cdStart === 0xffffffff) throw zipError('CIPHERML_E_FORMAT_UNSUPPORTED', 'ZIP64 archives', param);
  if (count > limits.maxMembers) {
    throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `the archive lists ${count} members, more than ${limits.maxMembers}`, { param, details: { limit: limits.maxMembers, actual: count } });
  }
  if (cdStart + cdSize > eocd) throw zipError('CIPHERML_E_FORMAT_CORRUPT', 'ZIP central directory lies outside the archive', param);
  const entries: ZipEntry[] = [];
  const names = new Set<string>();
  let total = 0;
  let p = cdStart;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cdStart + cdSize || b.readUInt32LE(p) !== 0x02014b50) throw zipError('CIPHERML_E_FORMAT_CORRUPT', 'ZIP central directory is damaged', param);
    const flags = b.readUInt16LE(p + 8);
    const method = b.readUInt16LE(p + 10);
    const crc = b.readUInt32LE(p + 16);
    const csize = b.readUInt32LE(p + 20);
    const usize = b.readUInt32LE(p + 24);
    const nameLen = b.readUInt16LE(p + 28);
    const extraLen = b.readUInt16LE(p + 30);
    const commentLen = b.readUInt16LE(p + 32);
    const local = b.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cdStart + cdSize) throw zipError('CIPHERML_E_FORMAT_CORRUPT', 'ZIP central directory is damaged', param);
    const name = b.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    p += 46 + nameLen + extraLen + commentLen;
    if ((flags & 1) !== 0) throw zipError('CIPHERML_E_FORMAT_UNSUPPORTED', `encrypted ZIP member ${name}`, param);
    if (csize === 0xffffffff || usize === 0xffffffff || local === 0xffffffff) throw zipError('CIPHERML_E_FORMAT_UNSUPPORTED', `ZIP64 member ${name}`, param);
    if (method !== 0 && method !== 8) throw zipError('CIPHERML_E_FORMAT_UNSUPPORTED', `ZIP member ${name} uses compression method ${method} (stored and deflate are supported)`, param);
    if (method === 0 && csize !== usize) throw zipError('CIPHERML_E_FORMAT_CORRUPT', `stored ZIP member ${name} declares ${csize} bytes stored and ${usize} unpacked`, param);
    if (names.has(name)) throw zipError('CIPHERML_E_FORMAT_CORRUPT', `ZIP member ${name} appears twice`, param);
    names.add(name);
    total += usize;
    if (total > limits.maxBytes) {
      throw new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `the archive's members declare more than ${limits.maxBytes} bytes unpacked (at ${name})`, {
        param,
        details: { limit: limits.maxBytes },
        advice: `Give ${param} a smaller archive; if it is genuine, raise maxBytes.`,
      });
    }
    if (local + 30 > cdStart || b.readUInt32LE(local) !== 0x04034b50) throw zipError('CIPHERML_E_FORMAT_CORRUPT', `ZIP local header of ${name} is damaged`, param);
    const dataStart = local + 30 + b.readUInt16LE(local + 26) + b.readUInt16LE(local + 28);
    if (dataStart + csize > cdStart) throw zipError('CIPHERML_E_FORMAT_TRUNCATED', `ZIP member ${name} is cut off`, param);
    entries.push({ name, method, crc, csize, usize, dataStart });
  }
  // Overlapping members (one deflate stream shared by many entries) are how non-recursive
  // zip bombs multiply their output; np.savez never writes them.
  const byStart = [...entries].sort((x, y) => x.dataStart - y.dataStart);
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1]!;
    if (byStart[i]!.dataStart < prev.dataStart + prev.csize) throw zipError('CIPHERML_E_FORMAT_CORRUPT', `ZIP members ${prev.name} and ${byStart[i]!.name} overlap`, param);
  }
  return entries;
}

/**
 * Reads the members of a ZIP archive (stored or deflate), bounded by `limits`: the whole central
 * directory is checked first, then each member is inflated with its output capped at the size the
 * directory declares and checked against its CRC-32.
 *
 * @example
 * ```ts
 * const files = readZip(await readFile('calibration.zip')); // Map name → bytes
 * ```
 */
export function readZip(bytes: Uint8Array, param = 'zip', limits: Partial<ArrayLimits> = {}): Map<string, Uint8Array> {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 22) throw zipError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a ZIP archive (shorter than an end-of-central-directory record)', param);
  const entries = zipDirectory(b, limitsOf(limits), param);
  const out = new Map<string, Uint8Array>();
  for (const e of entries) {
    const raw = b.subarray(e.dataStart, e.dataStart + e.csize);
    let data: Uint8Array;
    if (e.method === 0) data = raw;
    else {
      try {
        data = decompressBounded(raw, 'deflate-raw', { expectedBytes: e.usize, cap: e.usize }, `${param}:${e.name}`);
      } catch (err) {
        throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `ZIP member ${e.name} does not inflate to the ${e.usize} bytes its directory entry declares`, { param, cause: err });
      }
    }
    if (crc32(data) !== e.crc) throw zipError('CIPHERML_E_FORMAT_CORRUPT', `ZIP member ${e.name} fails its CRC-32 check`, param);
    out.set(e.name, data);
  }
  return out;
}

/**
 * Writes a ZIP archive of stored members (what `np.savez` writes).
 *
 * @example
 * ```ts
 * await writeFile('calibration.npz', writeZip(new Map([['x.npy', writeNpy(t)]])));
 * ```
 */
export function writeZip(files: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of files) {
    const nm = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(nm.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(nm.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, nm, Buffer.from(data));
    central.push(ch, nm);
    offset += 30 + nm.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.size, 8);
  end.writeUInt16LE(files.size, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/**
 * Reads model inputs from .npy bytes or an .npz/.zip of .npy members (one tensor per member, in
 * member-name order), bounded by `limits` ({@link readNpy}, {@link readZip}).
 *
 * @example
 * ```ts
 * const calib = readArrays(await readFile('calibration.npz'));
 * ```
 */
export function readArrays(bytes: Uint8Array, param = 'input', limits: Partial<ArrayLimits> = {}): Tensor[] {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b) {
    const members = [...readZip(bytes, param, limits)].filter(([n]) => n.endsWith('.npy')).sort(([a], [b]) => a.localeCompare(b));
    if (members.length === 0) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'the archive holds no .npy members', { param });
    return members.map(([name, data]) => readNpy(data, `${param}:${name}`, limits));
  }
  return [readNpy(bytes, param, limits)];
}
