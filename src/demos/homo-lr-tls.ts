import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CipherMLError } from '../core/errors.ts';

/**
 * TLS for the homo-lr demo: a throwaway local test CA and one certificate per party, made with the
 * `openssl` command line. Every certificate is for 127.0.0.1/localhost only and lives one day.
 * This is a LOCAL TEST CA, made by the demo so that every demo connection runs over mutual TLS as
 * a deployment would; a deployment uses certificates from its own CA (docs/fl.md, "Transport").
 */

const run = promisify(execFile);

/** Printed wherever the demo's CA is mentioned. */
export const DEMO_CA_LABEL = 'LOCAL TEST CA (throwaway, made by the demo; not for deployment)';

/** The files of one party. */
export interface PartyTls {
  readonly cert: string;
  readonly key: string;
}

/** The demo's CA and the per-party certificates. */
export interface DemoTls {
  /** The CA certificate every party verifies its peers against. */
  readonly ca: string;
  party(name: string): PartyTls;
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', [...args]);
  } catch (e) {
    const err = e as { code?: unknown; stderr?: unknown };
    if (err.code === 'ENOENT') throw new CipherMLError('CIPHERML_E_DEPENDENCY_MISSING', 'the demo makes its local test CA with the `openssl` command, which is not on PATH; install openssl or run the demo with --no-tls', { param: '--tls' });
    throw new CipherMLError('CIPHERML_E_DEPENDENCY_MISSING', `openssl ${args[0] ?? ''} failed: ${String(err.stderr ?? e).trim().slice(0, 300)}`, { param: '--tls' });
  }
}

/**
 * Makes `<dir>/ca.pem` and `<dir>/<party>.{pem,key}` for each party (EC P-256, SAN 127.0.0.1 and
 * localhost, serving and client use). The CA's private key is deleted once all are signed.
 *
 * @example
 * ```ts
 * const tls = await makeDemoTls(join(runDir, 'tls'), ['server', 'worker-1', 'holder-1']);
 * spawn('cipherml', ['server', '--tls-cert', tls.party('server').cert, '--tls-key', tls.party('server').key, '--tls-ca', tls.ca]);
 * ```
 */
export async function makeDemoTls(dir: string, parties: readonly string[]): Promise<DemoTls> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const f = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=cipherml demo LOCAL TEST CA (throwaway)']);
  await writeFile(f('party.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  for (const p of parties) {
    if (!/^[a-z0-9-]+$/.test(p)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `party name ${JSON.stringify(p)} must be lowercase letters, digits and dashes`, { param: 'party' });
    await openssl(['req', ...ec, '-keyout', f(`${p}.key`), '-out', f(`${p}.csr`), '-subj', `/CN=${p}`]);
    await openssl(['x509', '-req', '-in', f(`${p}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${p}.pem`), '-days', '1', '-extfile', f('party.ext')]);
  }
  // Nobody can sign another certificate under this CA once the demo's parties have theirs.
  await rm(f('ca.key'));
  return {
    ca: f('ca.pem'),
    party: (name) => {
      if (!parties.includes(name)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `no demo certificate for ${name}`, { param: 'party' });
      return { cert: f(`${name}.pem`), key: f(`${name}.key`) };
    },
  };
}
