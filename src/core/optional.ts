import { CipherMLError } from './errors.ts';

/**
 * Optional dependencies (`pg`, `bullmq`, `onnxruntime-node`) are loaded only on the code path
 * that needs them, so a project that never configures PostgreSQL, Redis or the ONNX Runtime
 * baseline neither installs nor loads them.
 */

/** What the caller needs an optional package for, to name in the error. */
export interface OptionalDependency {
  /** The npm package name, e.g. `"pg"`. */
  readonly name: string;
  /** The flag or config key that asked for it, e.g. `"--db"`. */
  readonly param: string;
  /** What it is needed for, e.g. `"PostgreSQL storage"`. */
  readonly purpose: string;
  /** Whether it is a devDependency of a cipherml checkout (benchmarks) rather than an optional peer. */
  readonly dev?: boolean;
}

function isMissing(e: unknown, name: string): boolean {
  const err = e as { code?: unknown; message?: unknown };
  return (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && typeof err.message === 'string' && err.message.includes(`'${name}`);
}

/**
 * Loads an optional package through `load` (a closure over a literal `import('name')`, so type
 * checkers see the module), turning "module not found" into a typed
 * `CIPHERML_E_DEPENDENCY_MISSING` that names the flag and the install command.
 *
 * @example
 * ```ts
 * const pg = (await importOptional(() => import('pg'), { name: 'pg', param: '--db', purpose: 'PostgreSQL storage' })).default;
 * ```
 */
export async function importOptional<T>(load: () => Promise<T>, dep: OptionalDependency): Promise<T> {
  try {
    return await load();
  } catch (e) {
    if (!isMissing(e, dep.name)) throw e;
    const install = dep.dev === true ? `npm install --save-dev ${dep.name}` : `npm install ${dep.name}`;
    throw new CipherMLError('CIPHERML_E_DEPENDENCY_MISSING', `${dep.purpose} needs the package "${dep.name}", which is not installed`, {
      param: dep.param,
      cause: e,
      advice: `Run \`${install}\` in your project (it is an optional dependency of cipherml, installed only by those who use it) and retry.`,
    });
  }
}
