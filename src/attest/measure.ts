import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { CipherMLError } from '../core/errors.ts';

/**
 * The measurement of an aggregator deployment: a SHA-384 digest (48 bytes, the size of a TDX
 * MRTD or SNP MEASUREMENT) over a canonical manifest of exactly what runs: every regular file of
 * the bundle (path and SHA-256, sorted by path, so file times and directory order do not
 * matter), the Node binary's SHA-256 and version, and the security-relevant configuration as
 * canonical JSON (sorted keys). Two measurements of the same tree are equal; any changed,
 * added or removed file changes it. This is what a simulation report states; under a real TEE
 * the hardware measures the image instead (docs/enclave.md).
 */

export interface MeasureOptions {
  /** The bundle directory (the built JavaScript, or src/ in a source checkout run by Node directly). */
  readonly bundle: string;
  /** The Node binary; default `process.execPath`. */
  readonly node?: string;
  /** Configuration that affects security (min-fit, key sizes, TEE kind, …). */
  readonly config?: unknown;
  readonly onProgress?: (line: string) => void;
}

export interface Measurement {
  /** Hex SHA-384 of the manifest. */
  readonly measurement: string;
  readonly files: number;
  readonly bundleDigest: string;
  readonly nodeDigest: string;
  readonly nodeVersion: string;
  readonly configDigest: string;
  /** The manifest itself (one line per entry), for audit. */
  readonly manifest: string;
}

const MAX_FILES = 100_000;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** JSON with object keys sorted at every level (RFC 8785-style canonical form for our values). */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

async function walk(root: string, dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const full = join(dir, e.name);
    if (e.isDirectory()) await walk(root, full, out);
    else if (e.isFile() || e.isSymbolicLink()) out.push(full);
    else throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${full} is neither a file, a link nor a directory`, { param: '--bundle' });
    if (out.length > MAX_FILES) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the bundle has more than ${MAX_FILES} files`, { param: '--bundle' });
  }
}

/**
 * Measures a bundle.
 *
 * @example
 * ```ts
 * const m = await measureBundle({ bundle: 'dist', config: { minFit: 2, keyBits: 3072 } });
 * console.log(m.measurement);
 * ```
 */
export async function measureBundle(opts: MeasureOptions): Promise<Measurement> {
  let st;
  try {
    st = await lstat(opts.bundle);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_IO', `cannot read the bundle ${opts.bundle}`, { param: '--bundle', cause: e });
  }
  if (!st.isDirectory()) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${opts.bundle} is not a directory`, { param: '--bundle' });
  const paths: string[] = [];
  await walk(opts.bundle, opts.bundle, paths);
  const rel = paths.map((p) => ({ p, r: relative(opts.bundle, p).split(sep).join('/') })).sort((a, b) => (a.r < b.r ? -1 : a.r > b.r ? 1 : 0));
  const bundle = createHash('sha256');
  const lines: string[] = ['cipherml-enclave-measurement/v1'];
  for (const [i, { p, r }] of rel.entries()) {
    const s = await lstat(p);
    const line = s.isSymbolicLink() ? `link ${JSON.stringify(r)} ${JSON.stringify(await readlink(p))}` : `file ${JSON.stringify(r)} ${await sha256File(p)}`;
    bundle.update(`${line}\n`);
    lines.push(line);
    if (opts.onProgress !== undefined && (i + 1) % 500 === 0) opts.onProgress(`[measure] ${i + 1}/${rel.length} files`);
  }
  const nodePath = opts.node ?? process.execPath;
  let nodeDigest: string;
  try {
    nodeDigest = await sha256File(nodePath);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_IO', `cannot read the Node binary ${nodePath}`, { param: '--node', cause: e });
  }
  const nodeVersion = opts.node === undefined ? process.version : 'unknown';
  const config = canonicalJson(opts.config ?? {});
  const configDigest = createHash('sha256').update(config).digest('hex');
  lines.push(`node ${nodeDigest} ${nodeVersion}`, `config ${configDigest}`);
  const manifest = `${lines.join('\n')}\n`;
  return {
    measurement: createHash('sha384').update(manifest).digest('hex'),
    files: rel.length,
    bundleDigest: bundle.digest('hex'),
    nodeDigest,
    nodeVersion,
    configDigest,
    manifest,
  };
}
