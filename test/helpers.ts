import { isCipherMLError } from '../src/core/errors.ts';

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

/** The `param` of the INVALID_ARGUMENT error `f` throws, `other: …` for any other throw, undefined if none. */
export function paramOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isCipherMLError(e, 'CIPHERML_E_INVALID_ARGUMENT') ? e.param : `other: ${String(e)}`;
  }
  return undefined;
}
