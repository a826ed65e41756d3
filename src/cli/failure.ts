import { CipherMLError } from '../core/errors.ts';
import { listenError } from '../core/listen.ts';

/** The flag that sets the listen address of each long-running command. */
const LISTEN_FLAG: Readonly<Record<string, string>> = { serve: '--port', gateway: '--port', server: '--address', 'key-authority': '--address' };

function flagValue(argv: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === flag) return argv[i + 1];
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
  }
  return undefined;
}

/**
 * Presents a failure that is not already a {@link CipherMLError}: expected system failures
 * (a port in use, a missing file) become typed errors naming the flag; anything else is an
 * internal error whose stack `--debug` prints.
 *
 * @example
 * ```ts
 * const err = describeFailure(e, 'serve', process.argv);
 * ```
 */
export function describeFailure(e: unknown, command: string | undefined, argv: readonly string[]): CipherMLError {
  const errno = e as NodeJS.ErrnoException & { port?: number; address?: string };
  const listenFlag = command === undefined ? undefined : LISTEN_FLAG[command];
  if (listenFlag !== undefined && (errno.syscall === 'listen' || errno.code === 'EADDRINUSE' || errno.code === 'ERR_SOCKET_BAD_PORT')) {
    const host = flagValue(argv, '--host') ?? '127.0.0.1';
    const given = flagValue(argv, listenFlag);
    const address = listenFlag === '--port' ? `${host}:${given ?? errno.port ?? '?'}` : (given ?? `${errno.address ?? '?'}:${errno.port ?? '?'}`);
    return listenError(e, address, listenFlag);
  }
  if (typeof errno.path === 'string' && (errno.code === 'ENOENT' || errno.code === 'EACCES' || errno.code === 'EISDIR' || errno.code === 'ENOTDIR' || errno.code === 'EEXIST')) {
    const what = { ENOENT: 'does not exist', EACCES: 'is not accessible to this user', EISDIR: 'is a folder, not a file', ENOTDIR: 'has a file where a folder is expected', EEXIST: 'already exists' }[errno.code];
    return new CipherMLError('CIPHERML_E_IO', `${errno.path} ${what}`, { cause: e, advice: errno.code === 'ENOENT' ? 'Check the path you gave (relative paths start from the current folder).' : 'Choose another path, or fix the permissions of this one.' });
  }
  return new CipherMLError('CIPHERML_E_INTERNAL', `unexpected failure: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/**
 * Runs library code on behalf of a command, renaming the library's parameter names in errors to
 * the flags the user typed (`packed` → `--in`, `values[3]` → `--in (value 3)`), keeping the code,
 * the problem and the advice.
 *
 * @example
 * ```ts
 * const sum = await namingFlags({ packed: '--in', values: '--in' }, () => decryptVector(sk, packed));
 * ```
 */
export async function namingFlags<T>(flags: Readonly<Record<string, string>>, run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (!(e instanceof CipherMLError) || e.param === undefined || e.param.startsWith('-')) throw e;
    const param = e.param;
    for (const [name, flag] of Object.entries(flags)) {
      if (param === name || param.startsWith(`${name}[`) || param.startsWith(`${name}.`)) {
        const rest = param.slice(name.length);
        const index = /^\[(\d+)\]/.exec(rest)?.[1];
        throw new CipherMLError(e.code, e.problem, {
          param: index === undefined ? (rest === '' ? flag : `${flag} (${rest.replace(/^\./, '')})`) : `${flag} (value ${index})`,
          cause: e,
          advice: e.advice,
          ...(e.details === undefined ? {} : { details: e.details }),
        });
      }
    }
    throw e;
  }
}
