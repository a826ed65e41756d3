import { open } from 'node:fs/promises';
import { CipherMLError } from './errors.ts';
import { readFileTyped } from './io.ts';

/**
 * Whole-file reads bounded by what the caller can use: the size is checked (fstat) before any
 * buffer is allocated, and a file that is not regular (a FIFO, `/dev/zero`) or grows while read
 * is read in chunks and refused once it passes the limit — memory never exceeds `maxBytes` + one
 * chunk, whatever the path points at.
 */

const CHUNK = 1 << 20;

function tooLarge(path: string, param: string, maxBytes: number, actual: number | string): CipherMLError {
  return new CipherMLError('CIPHERML_E_INPUT_TOO_LARGE', `${path} holds ${actual} bytes, more than the ${maxBytes} accepted here`, {
    param,
    details: { path, limit: maxBytes, actual },
    advice: `Check that ${param} names the intended file; if it is genuine, raise the limit for ${param}.`,
  });
}

/**
 * Reads `path` whole if it holds at most `maxBytes` bytes; otherwise throws
 * `CIPHERML_E_INPUT_TOO_LARGE` naming `param`, before reading it. OS errors are typed as by
 * `readFileTyped` (`CIPHERML_E_IO` naming `param`).
 *
 * @example
 * ```ts
 * const bytes = await readFileBounded('model.onnx', '--onnx-path', 256 << 20);
 * ```
 */
export async function readFileBounded(path: string, param: string, maxBytes: number): Promise<Uint8Array> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch {
    return readFileTyped(path, param); // throws the typed IO error for this path
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) return await readFileTyped(path, param);
    if (st.isFile() && st.size > maxBytes) throw tooLarge(path, param, maxBytes, st.size);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = st.isFile() ? Math.max(1, Math.min(CHUNK, st.size - total + 1)) : CHUNK;
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw tooLarge(path, param, maxBytes, `more than ${maxBytes}`);
      chunks.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    await fh.close();
  }
}
