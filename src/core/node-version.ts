import { CipherMLError } from './errors.ts';

/**
 * Import-time guard: every public entry point imports this module first, so that on an older
 * Node.js the import fails with one clear error instead of a missing `node:sqlite` or zstd deep
 * inside. Modules that use Node 24 APIs reach them through namespace objects or
 * `process.getBuiltinModule`, never through named imports that would fail at link time before
 * this check runs.
 */

/** The oldest Node.js major version cipherml supports (`engines.node` in package.json). */
export const MIN_NODE_MAJOR = 24;

/**
 * Throws `CIPHERML_E_NODE_VERSION` when `version` (default: this process) is older than
 * {@link MIN_NODE_MAJOR}.
 *
 * @example
 * ```ts
 * assertNodeVersion('v20.19.0'); // throws CIPHERML_E_NODE_VERSION
 * ```
 */
export function assertNodeVersion(version: string = process.version): void {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1] ?? Number.NaN);
  if (!(major >= MIN_NODE_MAJOR)) {
    throw new CipherMLError('CIPHERML_E_NODE_VERSION', `cipherml needs Node.js ${MIN_NODE_MAJOR} or newer (it uses node:sqlite and zstd from node:zlib); this is Node.js ${version}`, {
      param: 'node',
      details: { required: `>=${MIN_NODE_MAJOR}`, actual: version },
    });
  }
}

assertNodeVersion();
