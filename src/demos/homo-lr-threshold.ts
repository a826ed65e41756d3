import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CipherMLError } from '../core/errors.ts';
import { generateIdentity, publicIdentityToJson, saveIdentity } from '../core/identity.ts';
import { parseThresholdLabel } from '../paillier/threshold.ts';

/**
 * The key-holder "threshold" parties of the homo-lr demo: the trusted dealer (a one-shot
 * `cipherml paillier threshold-keygen` process), one identity per worker with the roster of
 * their public halves, and L `cipherml key-holder` processes, each with its own share.
 */

/** How the demo starts a `cipherml` child process (src/demos/homo-lr.ts). */
export type SpawnCli = (args: string[], name: string, onJson?: (o: Record<string, unknown>) => void) => { child: ChildProcess; exit: Promise<number | null> };

/** What the server and the workers need to join the threshold run. */
export interface ThresholdParties {
  readonly serverArgs: readonly string[];
  workerArgs(id: string): string[];
  readonly children: readonly { name: string; child: ChildProcess; exit: Promise<number | null> }[];
  readonly fingerprint: string;
}

/**
 * Deals the key, writes identities and the roster under `<runDir>/threshold`, and starts the
 * key holders on free loopback ports.
 *
 * @example
 * ```ts
 * const th = await startThresholdParties({ runDir, label: '2-of-3', keyBits: 2048, workerIds: ['1', '2'], minContributions: 2, spawnCli, freePort, onLine });
 * ```
 */
export async function startThresholdParties(o: {
  readonly runDir: string;
  readonly label: string;
  readonly keyBits: number;
  readonly workerIds: readonly string[];
  readonly minContributions: number;
  readonly spawnCli: SpawnCli;
  readonly freePort: () => Promise<number>;
  readonly onLine: (line: string) => void;
  readonly waitFor: (predicate: () => boolean, what: string, timeoutMs: number) => Promise<void>;
  /** Identity files the workers already have, and the roster pinning them (otherwise made here). */
  readonly identities?: { readonly file: (workerId: string) => string; readonly roster: string };
  /** Extra flags of key holder k (1-based), e.g. its TLS certificate. */
  readonly holderArgs?: (k: number) => readonly string[];
}): Promise<ThresholdParties> {
  const { threshold, holders } = parseThresholdLabel(o.label, '--threshold');
  if (o.minContributions < 2) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'key-holder "threshold" needs at least 2 contributions per round (min-fit-clients ≥ 2)', { param: '--drop' });
  const dir = join(o.runDir, 'threshold');
  const children: { name: string; child: ChildProcess; exit: Promise<number | null> }[] = [];
  o.onLine(`[dealer] dealing a ${threshold}-of-${holders} threshold Paillier key (${o.keyBits}-bit safe-prime modulus) in a one-shot process`);
  let dealt: Record<string, unknown> | null = null;
  const dealer = o.spawnCli(['paillier', 'threshold-keygen', '--holders', String(holders), '--threshold', String(threshold), '--bits', String(o.keyBits), '--out-dir', dir, '--json'], 'dealer', (j) => {
    if (typeof j['error'] === 'object' && j['error'] !== null) o.onLine(`[dealer] error: ${String((j['error'] as { message?: unknown }).message)}`);
    else dealt = j;
  });
  children.push({ name: 'dealer', ...dealer });
  if ((await dealer.exit) !== 0 || dealt === null) throw new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', 'the threshold dealer failed (see its output above)', { param: 'dealer' });
  const d = dealt as { publicKeyPath: string; sharePaths: string[]; fingerprint: string };
  o.onLine(`[dealer] wrote ${d.publicKeyPath} and ${d.sharePaths.length} share files; fingerprint ${d.fingerprint.slice(0, 16)}…; the dealer process has exited`);
  // Each worker's signing identity (made here for the demo; in a deployment each worker makes its own).
  const rosterPath = o.identities?.roster ?? join(dir, 'workers.roster.json');
  const identityFile = o.identities?.file ?? ((id: string) => join(dir, `worker-${id}.id`));
  if (o.identities === undefined) {
    const pubs = [];
    for (const id of o.workerIds) {
      const me = generateIdentity('worker', id);
      await saveIdentity(identityFile(id), me);
      pubs.push(publicIdentityToJson(me));
    }
    await writeFile(rosterPath, `${JSON.stringify(pubs, null, 2)}\n`, { mode: 0o644 });
  }
  const addresses: string[] = [];
  for (const [k, sharePath] of d.sharePaths.entries()) {
    const address = `127.0.0.1:${await o.freePort()}`;
    addresses.push(address);
    let ready = false;
    const h = o.spawnCli(['key-holder', '--share', sharePath, '--roster', rosterPath, '--min-contributions', String(o.minContributions), '--address', address, '--threshold-fingerprint', d.fingerprint, ...(o.holderArgs?.(k + 1) ?? []), '--json'], `holder ${k + 1}`, (j) => {
      if (typeof j['error'] === 'object' && j['error'] !== null) o.onLine(`[holder ${k + 1}] error: ${String((j['error'] as { message?: unknown }).message)}`);
      if (j['event'] === 'listening') ready = true;
      o.onLine(`[holder ${k + 1}] ${String(j['event'])}${j['transport'] === undefined ? '' : ` on ${String(j['address'])} (${String(j['transport'])})`}${j['round'] === undefined ? '' : ` round ${String(j['round'])}`}${j['detail'] === undefined ? '' : `: ${String(j['detail'])}`}`);
    });
    children.push({ name: `holder ${k + 1}`, ...h });
    await o.waitFor(() => ready || h.child.exitCode !== null, `key holder ${k + 1}`, 60_000);
    if (!ready) throw new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `key holder ${k + 1} exited before listening (see its output above)`, { param: 'key-holder' });
  }
  return {
    serverArgs: ['--threshold', `${threshold}-of-${holders}`, '--threshold-public-key', d.publicKeyPath, '--threshold-fingerprint', d.fingerprint, '--threshold-holders', addresses.join(','), '--threshold-roster', rosterPath],
    workerArgs: (id) => ['--threshold-public-key', d.publicKeyPath, '--threshold-fingerprint', d.fingerprint, '--identity', identityFile(id)],
    children,
    fingerprint: d.fingerprint,
  };
}
