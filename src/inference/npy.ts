import { crc32, inflateRawSync } from 'node:zlib';
import { CipherMLError } from '../core/errors.ts';
import type { Tensor } from './onnx.ts';
import { sizeOf } from './onnx.ts';

/**
 * NumPy `.npy` (format versions 1–3, numpy/lib/format.py) and `.npz` (a ZIP archive of .npy
 * members, PKWARE APPNOTE 6.3 §4.3: stored or deflate entries, no ZIP64) — just enough for model
 * inputs and calibration sets. Little-endian float32/float64/int32/int64/uint8, C order.
 */

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
const DTYPES = { '<f4': 4, '<f8': 8, '<i4': 4, '<i8': 8, '|u1': 1, '<u1': 1 } as const;
type Dtype = keyof typeof DTYPES;

/**
 * Parses one .npy file.
 *
 * @example
 * ```ts
 * const { dims, data } = readNpy(await readFile('input.npy'));
 * ```
 */
export function readNpy(bytes: Uint8Array, param = 'npy'): Tensor {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 10 || !b.subarray(0, 6).equals(MAGIC)) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a .npy file (magic bytes)', { param });
  const major = b[6]!;
  const headerLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (b.length < start + headerLen) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', '.npy header cut off', { param });
  const header = b.subarray(start, start + headerLen).toString('latin1');
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `unreadable .npy header ${JSON.stringify(header)}`, { param });
  if (!(descr in DTYPES)) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `.npy dtype ${descr} (supported: ${Object.keys(DTYPES).join(', ')})`, { param });
  if (fortran === 'True') throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'Fortran-ordered .npy arrays (save with np.ascontiguousarray)', { param });
  const dims = shape.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const n = sizeOf(dims);
  const width = DTYPES[descr as Dtype];
  const body = start + headerLen;
  if (b.length < body + n * width) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `.npy data holds ${b.length - body} bytes, shape [${dims.join(', ')}] needs ${n * width}`, { param });
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

/**
 * Reads the members of a ZIP archive (stored or deflate).
 *
 * @example
 * ```ts
 * const files = readZip(await readFile('calibration.zip')); // Map name → bytes
 * ```
 */
export function readZip(bytes: Uint8Array, param = 'zip'): Map<string, Uint8Array> {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 65535); i--) {
    if (b.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'not a ZIP archive (no end-of-central-directory record)', { param });
  const count = b.readUInt16LE(eocd + 10);
  let p = b.readUInt32LE(eocd + 16);
  const out = new Map<string, Uint8Array>();
  for (let k = 0; k < count; k++) {
    if (p + 46 > b.length || b.readUInt32LE(p) !== 0x02014b50) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', 'ZIP central directory is damaged', { param });
    const method = b.readUInt16LE(p + 10);
    const crc = b.readUInt32LE(p + 16);
    const csize = b.readUInt32LE(p + 20);
    const usize = b.readUInt32LE(p + 24);
    const nameLen = b.readUInt16LE(p + 28);
    const extraLen = b.readUInt16LE(p + 30);
    const commentLen = b.readUInt16LE(p + 32);
    const local = b.readUInt32LE(p + 42);
    const name = b.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    p += 46 + nameLen + extraLen + commentLen;
    if (csize === 0xffffffff || usize === 0xffffffff || local === 0xffffffff) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `ZIP64 member ${name}`, { param });
    if (local + 30 > b.length || b.readUInt32LE(local) !== 0x04034b50) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `ZIP local header of ${name} is damaged`, { param });
    const dataStart = local + 30 + b.readUInt16LE(local + 26) + b.readUInt16LE(local + 28);
    if (dataStart + csize > b.length) throw new CipherMLError('CIPHERML_E_FORMAT_TRUNCATED', `ZIP member ${name} is cut off`, { param });
    const raw = b.subarray(dataStart, dataStart + csize);
    let data: Uint8Array;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, usize) });
      } catch (e) {
        throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `ZIP member ${name} does not inflate`, { param, cause: e });
      }
    } else throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', `ZIP member ${name} uses compression method ${method} (stored and deflate are supported)`, { param });
    if (data.length !== usize || crc32(data) !== crc) throw new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', `ZIP member ${name} fails its CRC-32 check`, { param });
    out.set(name, data);
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
 * Reads model inputs from .npy bytes or an .npz/.zip of .npy members (concatenated along the
 * first axis, in member-name order).
 *
 * @example
 * ```ts
 * const calib = readArrays(await readFile('calibration.npz'));
 * ```
 */
export function readArrays(bytes: Uint8Array, param = 'input'): Tensor[] {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b) {
    const members = [...readZip(bytes, param)].filter(([n]) => n.endsWith('.npy')).sort(([a], [b]) => a.localeCompare(b));
    if (members.length === 0) throw new CipherMLError('CIPHERML_E_FORMAT_UNSUPPORTED', 'the archive holds no .npy members', { param });
    return members.map(([name, data]) => readNpy(data, `${param}:${name}`));
  }
  return [readNpy(bytes, param)];
}
