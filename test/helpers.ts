import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type CipherMLError, isCipherMLError } from '../src/core/errors.ts';

/** The cipherml error code `f` throws, `untyped: …` for any other throw, undefined if none. */
export function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isCipherMLError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return undefined;
}

/** The same for a promise. */
export async function codeOfAsync(f: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await f();
  } catch (e) {
    return isCipherMLError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return undefined;
}

/** The typed error `f` throws; fails the test if `f` returns or throws anything untyped. */
export function refusal(f: () => unknown): CipherMLError {
  try {
    f();
  } catch (e) {
    if (isCipherMLError(e)) return e;
    throw new Error(`expected a typed CipherMLError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a refusal, but the call returned');
}

/** The `param` of the INVALID_ARGUMENT error `f` throws, `other: …` for any other throw, undefined if none. */
export function paramOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isCipherMLError(e, 'CIPHERML_E_INVALID_ARGUMENT') ? e.param : `other: ${String(e)}`;
  }
  return undefined;
}

const runFile = promisify(execFile);
export const cliBin = join(import.meta.dirname, '..', 'bin', 'cipherml.js');

/** Runs the CLI as a user would (a separate Node process); never throws, returns code and output. */
export async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await runFile(process.execPath, [cliBin, ...args], { maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
