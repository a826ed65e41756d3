import { CipherMLError } from './errors.ts';

/**
 * Turns a failed `listen()` (EADDRINUSE, EACCES, EADDRNOTAVAIL, a bad port) into a typed error
 * that names the flag or config key the address came from, with advice for that case.
 *
 * @example
 * ```ts
 * server.once('error', (e) => reject(listenError(e, '127.0.0.1:9091', '--address')));
 * ```
 */
export function listenError(e: unknown, address: string, param: string): CipherMLError {
  const code = (e as NodeJS.ErrnoException).code;
  const port = /:(\d+)$/.exec(address)?.[1] ?? address;
  const flag = param.startsWith('--') ? param : `${param} (flag --${param})`;
  switch (code) {
    case 'EADDRINUSE':
      return new CipherMLError('CIPHERML_E_ADDRESS_IN_USE', `${address} is already in use by another process`, {
        param,
        cause: e,
        details: { address },
        advice: `Stop the process listening on port ${port} (for example an earlier cipherml still running), or choose a free port with ${flag}; port 0 picks any free port.`,
      });
    case 'EACCES':
      return new CipherMLError('CIPHERML_E_ADDRESS_IN_USE', `not allowed to listen on ${address}`, {
        param,
        cause: e,
        advice: `Ports below 1024 need administrator rights: choose a port from 1024 to 65535 with ${flag}.`,
      });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `the host of ${address} is not an address of this machine`, {
        param,
        cause: e,
        advice: `Listen on 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or one of this machine's own addresses with ${flag}.`,
      });
    case 'ERR_SOCKET_BAD_PORT':
      return new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${port} is not a TCP port`, { param, cause: e, advice: `Give a port from 0 to 65535 with ${flag} (0 picks any free port).` });
    default:
      return new CipherMLError('CIPHERML_E_IO', `cannot listen on ${address}: ${code ?? (e as Error).message}`, { param, cause: e, advice: `Check the address given with ${flag}.` });
  }
}
