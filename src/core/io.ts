import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { access, chmod, link, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { CipherMLError } from './errors.ts';

/** Options of {@link writeFileSafely}. */
export interface WriteFileOptions {
  /** File mode; secret material uses 0o600. */
  readonly mode?: number;
  /** Replace an existing file (atomically). Default false: an existing file is never touched. */
  readonly overwrite?: boolean;
  /** The flag or field that named the file, for errors (default `"path"`). */
  readonly param?: string;
  /** The flag that allows overwriting, for the advice (e.g. `"--overwrite"`). */
  readonly overwriteFlag?: string;
}

/**
 * Writes a file so that nothing already stored is lost: the data goes to a temporary file in the
 * same folder (created with `mode`, so a secret is never readable by others even briefly), is
 * flushed, then linked into place (refusing an existing file) or renamed over it when
 * `overwrite` is set.
 *
 * @example
 * ```ts
 * await writeFileSafely('key', bytes, { mode: 0o600 });
 * ```
 */
export async function writeFileSafely(path: string, data: Uint8Array | string, options: WriteFileOptions = {}): Promise<void> {
  await writeFileSafelyWith(path, (fh) => fh.writeFile(data), options);
}

/**
 * {@link writeFileSafely} for data too large to hold at once: `write` fills the temporary file
 * through its handle (sequential or positional writes), then it is flushed and put into place
 * the same way.
 *
 * @example
 * ```ts
 * await writeFileSafelyWith('key.pub', async (fh) => { await fh.write(part1); await fh.write(part2); });
 * ```
 */
export async function writeFileSafelyWith(path: string, write: (fh: FileHandle) => Promise<unknown>, options: WriteFileOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o644;
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx+', mode);
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, mode);
    if (options.overwrite === true) {
      await rename(tmp, path);
    } else {
      try {
        await link(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new CipherMLError('CIPHERML_E_FILE_EXISTS', `${path} already exists`, {
            param: options.param ?? 'path',
            details: { path },
            ...(options.overwriteFlag === undefined ? {} : { advice: `Choose another path, or pass ${options.overwriteFlag} to replace it.` }),
          });
        }
        throw e;
      }
      await unlink(tmp);
    }
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    if (e instanceof CipherMLError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new CipherMLError('CIPHERML_E_IO', `cannot write ${path}: ${code ?? (e as Error).message}`, {
      param: options.param ?? 'path',
      cause: e,
      advice: code === 'ENOENT' ? `The folder ${dirname(path)} does not exist: create it first (mkdir -p ${dirname(path)}).` : code === 'EACCES' ? `This user may not write to ${dirname(path)}: choose another folder.` : 'Check that the folder exists and that this user may write to it.',
    });
  }
}

/**
 * Refuses, before any work, to go on when one of the files a command will write already exists
 * (unless `overwrite`), so that a command writing several files writes all or none of them.
 * {@link writeFileSafely} still refuses at write time (a file created in between).
 *
 * @example
 * ```ts
 * await refuseExisting(['key', 'key.pub']); // CIPHERML_E_FILE_EXISTS naming the first present
 * ```
 */
export async function refuseExisting(paths: readonly string[], overwrite = false): Promise<void> {
  if (overwrite) return;
  for (const path of paths) {
    const present = await access(path).then(
      () => true,
      () => false,
    );
    if (present) throw new CipherMLError('CIPHERML_E_FILE_EXISTS', `${path} already exists: choose another path or pass overwrite`, { param: 'path', details: { path } });
  }
}

/**
 * Reads a whole file, turning OS errors into a typed IO error naming the parameter.
 *
 * @example
 * ```ts
 * const bytes = await readFileTyped('key.pub', 'publicKeyPath');
 * ```
 */
export async function readFileTyped(path: string, param: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const advice =
      code === 'ENOENT'
        ? `No file ${path} exists (relative paths start from ${process.cwd()}): check the ${param} value.`
        : code === 'EACCES'
          ? `This user may not read ${path}: fix its permissions or give another ${param}.`
          : code === 'EISDIR'
            ? `${path} is a folder: give the file inside it as ${param}.`
            : `Check the ${param} value.`;
    throw new CipherMLError('CIPHERML_E_IO', `cannot read ${path}: ${code ?? (e as Error).message}`, { param, cause: e, advice });
  }
}
