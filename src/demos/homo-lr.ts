import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CipherMLError } from '../core/errors.ts';
import { packageRoot } from '../core/paths.ts';
import { generateIdentity, publicIdentityToJson, saveIdentity, type IdentityRole } from '../core/identity.ts';
import { writeFileSafely } from '../core/io.ts';
import { describeServerEvent } from '../fl/describe.ts';
import { keySizeFor } from '../fl/key-pinning.ts';
import type { ServerEvent } from '../fl/server.ts';
import { parseThresholdLabel } from '../paillier/threshold.ts';
import { startThresholdParties } from './homo-lr-threshold.ts';
import { DEMO_CA_LABEL, makeDemoTls, type DemoTls } from './homo-lr-tls.ts';
import { SIMULATION_LABEL } from '../attest/index.ts';
import { measureAggregator } from '../enclave/measure.ts';
import { resolveRunConfig, type RunConfig } from '../fl/config.ts';

/**
 * The federated demo of the README: a parameter server, two workers (hospital A and B with the
 * breast cancer split; more workers share those two files as shards) and, when the key holder is
 * an authority, a key-authority process — each a separate Node process talking gRPC over
 * loopback, exactly as on separate machines.
 */

/** Options of {@link runHomoLrDemo}. */
export interface HomoLrDemoOptions {
  /** "enclave": Paillier with the key in the attested aggregator (simulation mode here; src/enclave). */
  readonly strategy: 'plain' | 'paillier' | 'secagg' | 'enclave';
  /** Worker processes (default 2): hospital A's file is split among ⌈n/2⌉, B's among ⌊n/2⌋. */
  readonly workers?: number;
  /** How many workers drop out in round 2 (secagg: after sharing keys, before the masked input). */
  readonly drop?: number;
  /** Protocol of strategy "secagg" (default "pw"). */
  readonly secureAggregation?: 'pw' | 'stable-pw' | 'secagg+';
  readonly keyHolder: 'server' | 'authority' | 'clients' | 'threshold';
  /** Key-holder "threshold": "k-of-L" key holders (default "2-of-3"). */
  readonly threshold?: string;
  readonly rounds: number;
  readonly keyBits: number;
  /**
   * Mutual TLS between all parties with certificates from a throwaway local test CA the demo makes
   * (`openssl` on PATH); default: on with key-holder "threshold", off otherwise (loopback plaintext).
   */
  readonly tls?: boolean;
  /** Where the run folder goes (history.json, history.svg, checkpoint.json). */
  readonly runDir?: string;
  /** Each line of progress (from every process, prefixed). */
  readonly onLine?: (line: string) => void;
}

/** The demo's result: the server's summary line plus the processes' exit codes. */
export interface HomoLrDemoResult {
  readonly summary: Record<string, unknown>;
  readonly exitCodes: Readonly<Record<string, number | null>>;
}

/** A free loopback TCP port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Spawns `cipherml …args` with its stdout (JSON lines to `onJson`) and stderr prefixed by `name`. */
export function cli(args: string[], name: string, onLine: (l: string) => void, onJson?: (o: Record<string, unknown>) => void): { child: ChildProcess; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [join(packageRoot(), 'bin', 'cipherml.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stderr! }).on('line', (l) => onLine(`[${name}] ${l}`));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    if (onJson !== undefined && l.startsWith('{')) {
      try {
        onJson(JSON.parse(l) as Record<string, unknown>);
        return;
      } catch {
        // not JSON after all: print it
      }
    }
    onLine(`[${name}] ${l}`);
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit };
}

/** Polls `predicate` until true, or fails with CIPHERML_E_PEER_UNAVAILABLE after `timeoutMs`. */
export async function waitForLine(predicate: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `${what} did not start within ${timeoutMs / 1000} s`, { param: what });
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Generates one identity per party into `<runDir>/identities` and a roster pinning them all, as an
 * operator would hand out (each party keeps only its own secret file).
 */
export async function demoIdentities(runDir: string, parties: readonly { role: IdentityRole; id: string }[]): Promise<{ files: Map<string, string>; roster: string; fingerprints: Map<string, string> }> {
  const dir = join(runDir, 'identities');
  await mkdir(dir, { recursive: true });
  const files = new Map<string, string>();
  const fingerprints = new Map<string, string>();
  const pubs = [];
  for (const p of parties) {
    const file = join(dir, `${p.role}-${p.id}.id`);
    const me = generateIdentity(p.role, p.id);
    await saveIdentity(file, me);
    files.set(`${p.role}:${p.id}`, file);
    fingerprints.set(`${p.role}:${p.id}`, me.fingerprint);
    pubs.push(publicIdentityToJson(me));
  }
  const roster = join(dir, 'roster.json');
  await writeFileSafely(roster, `${JSON.stringify(pubs, null, 2)}\n`, { mode: 0o644 });
  return { files, roster, fingerprints };
}

/**
 * Runs the multi-process demo and returns the server's summary.
 *
 * @example
 * ```ts
 * const { summary } = await runHomoLrDemo({ strategy: 'paillier', keyHolder: 'server', rounds: 30, keyBits: 2048 });
 * console.log(summary.accuracy);
 * ```
 */
export async function runHomoLrDemo(options: HomoLrDemoOptions): Promise<HomoLrDemoResult> {
  const onLine = options.onLine ?? (() => undefined);
  const n = options.workers ?? 2;
  const drop = options.drop ?? 0;
  if (!Number.isInteger(n) || n < 2 || n > 64) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected 2–64 workers, got ${n}`, { param: 'workers' });
  if (!Number.isInteger(drop) || drop < 0 || drop > n - 2) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected 0–${n - 2} dropouts for ${n} workers, got ${drop}`, { param: 'drop' });
  if (options.strategy === 'enclave' && options.tls !== undefined) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'the enclave aggregator serves its own attested TLS key, which workers pin from its attestation document; the demo CA (--tls / --no-tls) does not apply', { param: '--tls', advice: 'Drop --tls / --no-tls with --strategy enclave.' });
  }
  const data = (f: string) => join(packageRoot(), 'examples', 'data', f);
  const runDir = options.runDir ?? join(process.cwd(), 'runs', `homo-lr-${options.strategy}-${options.strategy === 'secagg' ? (options.secureAggregation ?? 'pw') : options.strategy === 'plain' ? 'none' : options.keyHolder}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(runDir, { recursive: true });
  const serverPort = await freePort();
  const children: { name: string; child: ChildProcess; exit: Promise<number | null> }[] = [];
  const needsAuthority = options.strategy === 'paillier' && options.keyHolder !== 'server' && options.keyHolder !== 'threshold';
  let authorityAddress = '';
  // Identity mode: every party signs with its own key and pins the others (no shared run secret).
  const ids = await demoIdentities(runDir, [
    { role: 'server', id: 'server' },
    ...(needsAuthority ? [{ role: 'authority' as const, id: 'authority' }] : []),
    ...Array.from({ length: n }, (_, i) => ({ role: 'worker' as const, id: String(i + 1) })),
  ]);
  const idArgs = (key: string) => ['--identity', ids.files.get(key)!, '--roster', ids.roster];
  // The enclave aggregator serves its own attested TLS key (src/enclave); the demo CA is not used there.
  const useTls = options.strategy !== 'enclave' && (options.tls ?? (options.strategy === 'paillier' && options.keyHolder === 'threshold'));
  const holderCount = options.strategy === 'paillier' && options.keyHolder === 'threshold' ? parseThresholdLabel(options.threshold ?? '2-of-3', '--threshold').holders : 0;
  let tls: DemoTls | null = null;
  if (useTls) {
    const names = ['server', ...(needsAuthority ? ['authority'] : []), ...Array.from({ length: n }, (_, i) => `worker-${i + 1}`), ...Array.from({ length: holderCount }, (_, k) => `holder-${k + 1}`)];
    tls = await makeDemoTls(join(runDir, 'tls'), names);
    onLine(`[tls] mutual TLS between all ${names.length} parties; certificates for 127.0.0.1 from a ${DEMO_CA_LABEL}: ${tls.ca}`);
  }
  // Each party serves with its own certificate and requires and verifies its peers' (mutual TLS).
  const tlsArgs = (party: string) => (tls === null ? [] : ['--tls-cert', tls.party(party).cert, '--tls-key', tls.party(party).key, '--tls-ca', tls.ca]);
  // 1024-bit keys are for quick tests only; workers refuse them unless told this is a test.
  const enclave = options.strategy === 'enclave';
  const keyBitsArgs = options.strategy === 'paillier' || enclave ? keySizeFor(options.keyBits, '--key-bits').flags : [];
  try {
    const th =
      options.strategy === 'paillier' && options.keyHolder === 'threshold'
        ? await startThresholdParties({
            runDir,
            label: options.threshold ?? '2-of-3',
            keyBits: options.keyBits,
            workerIds: Array.from({ length: n }, (_, i) => String(i + 1)),
            minContributions: n - drop,
            spawnCli: (args, name, onJson) => cli(args, name, onLine, onJson),
            freePort,
            onLine,
            waitFor: waitForLine,
            identities: { file: (id) => ids.files.get(`worker:${id}`)!, roster: ids.roster },
            holderArgs: (k) => tlsArgs(`holder-${k}`),
          }).then((t) => {
            children.push(...t.children);
            return t;
          })
        : null;
    if (needsAuthority) {
      const port = await freePort();
      authorityAddress = `127.0.0.1:${port}`;
      let ready = false;
      const a = cli(
        ['key-authority', '--address', authorityAddress, '--key-holder', options.keyHolder, '--key-bits', String(options.keyBits), ...idArgs('authority:authority'), ...tlsArgs('authority'), '--min-contributions', String(n - drop), '--json'],
        'authority',
        onLine,
        (o) => {
          if (o['authority'] === 'listening') ready = true;
          onLine(`[authority] ${String(o['authority'])}${o['party'] === undefined ? '' : ` for ${String(o['party'])}`}${o['detail'] === undefined ? '' : `: ${String(o['detail'])}`}`);
        },
      );
      children.push({ name: 'authority', ...a });
      await waitForLine(() => ready, 'key authority', 60_000);
    }
    let summary: Record<string, unknown> | null = null;
    // Enclave: the workers' policy names the measurement the aggregator will have and pins its (simulation) signer.
    const policy = enclave ? await enclavePolicy(runDir, options, n - drop, ids.fingerprints.get('server:server')!) : '';
    const serverName = enclave ? `aggregator, ${SIMULATION_LABEL}` : 'server';
    const serverArgs = [
      'server',
      '--address', `127.0.0.1:${serverPort}`,
      '--strategy', enclave ? 'paillier' : options.strategy,
      ...(enclave ? ['--tee', 'simulation'] : []),
      '--key-holder', options.keyHolder,
      '--key-bits', String(options.keyBits),
      '--num-server-rounds', String(options.rounds),
      '--min-available-clients', String(n),
      '--min-fit-clients', String(n - drop),
      '--min-evaluate-clients', String(n - drop),
      ...(options.strategy === 'secagg' ? ['--secure-aggregation', options.secureAggregation ?? 'pw', '--cipher-time-window', '10000'] : []),
      '--validate-set', data('breast_homo_test.csv'),
      '--run-dir', runDir,
      ...idArgs('server:server'),
      ...tlsArgs('server'),
      '--round-timeout', '60',
      '--json',
      ...(authorityAddress === '' ? [] : ['--authority-address', authorityAddress]),
      ...(th?.serverArgs ?? []),
    ];
    let listening = false;
    const s = cli(serverArgs, serverName, onLine, (o) => {
      if (o['type'] === 'listening') listening = true;
      if (o['type'] === 'enclave' || o['event'] === 'measurement') {
        onLine(`[${serverName}] ${o['type'] === 'enclave' ? `enclave ${String(o['state'])} secrets for run ${String(o['runId'])}; Paillier key ${String(o['paillierFingerprint'])}` : `measurement ${String(o['measurement'])}`}`);
        return;
      }
      if (typeof o['error'] === 'object' && o['error'] !== null) onLine(`[server] error: ${String((o['error'] as { message?: unknown }).message)}`);
      if ('accuracy' in o && 'strategy' in o) summary = o;
      else if (typeof o['type'] === 'string' && o['type'] !== 'finished' && o['type'] !== 'round-start') onLine(`[${serverName}] ${describeServerEvent(o as unknown as ServerEvent)}`);
    });
    children.push({ name: 'server', ...s });
    await waitForLine(() => listening || s.child.exitCode !== null, 'server', 120_000);
    if (!listening) throw new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `the server exited with code ${String(s.child.exitCode)} before listening (see its output above)`, { param: 'server' });
    // With key-holder "clients" only the workers can read the model: worker 1 scores it on the test set.
    let workerValidation: Record<string, unknown> | null = null;
    const guestShards = Math.ceil(n / 2);
    const plan = Array.from({ length: n }, (_, i) => {
      const guest = i < guestShards;
      const shard = guest ? `${i + 1}/${guestShards}` : `${i - guestShards + 1}/${n - guestShards}`;
      return { id: String(i + 1), file: guest ? 'breast_homo_guest.csv' : 'breast_homo_host.csv', shard, drops: i >= n - drop };
    });
    const dropStage = options.strategy === 'secagg' ? 'masked-input' : 'fit';
    const workers = plan.map(({ id, file, shard, drops }) =>
      cli(
        [
          'worker', '--server', `127.0.0.1:${serverPort}`, '--train-set', data(file), '--id', id, ...idArgs(`worker:${id}`), ...tlsArgs(`worker-${id}`), '--seed', id, '--log-every', '5',
          '--strategy', enclave ? 'paillier' : options.strategy, ...(options.strategy === 'paillier' ? ['--key-holder', options.keyHolder] : []), ...keyBitsArgs,
          ...(enclave ? ['--require-attestation', policy] : []),
          ...(n > 2 ? ['--shard', shard] : []),
          ...(drops ? ['--drop-at', `2:${dropStage}`] : []),
          ...(authorityAddress === '' ? [] : ['--authority', authorityAddress]),
          ...(th?.workerArgs(id) ?? []),
          ...(id === '1' && options.keyHolder === 'clients' ? ['--validate-set', data('breast_homo_test.csv')] : []),
        ],
        enclave ? `worker ${id}, ${SIMULATION_LABEL}` : `worker ${id}`,
        onLine,
        (o) => {
          if (typeof o['validation'] === 'object' && o['validation'] !== null) workerValidation = o['validation'] as Record<string, unknown>;
          onLine(`[${enclave ? `worker ${id}, ${SIMULATION_LABEL}` : `worker ${id}`}] ${JSON.stringify(o)}`);
        },
      ),
    );
    workers.forEach((w, i) => children.push({ name: `worker ${i + 1}`, ...w }));
    const [serverCode, ...workerCodes] = await Promise.all([s.exit, ...workers.map((w) => w.exit)]);
    if (th !== null) for (const c of th.children) if (c.child.exitCode === null) c.child.kill('SIGTERM');
    const exitCodes: Record<string, number | null> = { server: serverCode ?? null };
    workerCodes.forEach((c, i) => (exitCodes[`worker ${i + 1}`] = c ?? null));
    if (serverCode !== 0 || summary === null) {
      throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `the server exited with code ${serverCode} before finishing (see its output above)`, { param: 'server', details: exitCodes });
    }
    const final: Record<string, unknown> = {
      ...(summary as Record<string, unknown>),
      workers: n,
      dropped: plan.filter((p) => p.drops).map((p) => p.id),
      roster: ids.roster,
      transport: options.strategy === 'enclave' ? 'TLS to the attested aggregator key (workers pin it from the attestation document)' : tls === null ? 'plaintext HTTP/2 on loopback' : `mutual TLS (${DEMO_CA_LABEL})`,
    };
    const v = workerValidation as Record<string, unknown> | null;
    if (v !== null && final['evaluatedOn'] === 'workers') {
      Object.assign(final, { accuracy: v['accuracy'], loss: v['loss'], auc: v['auc'], evaluatedOn: 'validate-set (by worker 1: the server cannot read the model)' });
    }
    return { summary: final, exitCodes };
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGTERM');
    await Promise.all(children.map((c) => c.exit));
  }
}

/** The workers' attestation policy of the enclave demo (TOML in the run folder). */
async function enclavePolicy(runDir: string, o: HomoLrDemoOptions, minFit: number, signer: string): Promise<string> {
  // The same resolution the server's flags get, so both sides measure the same security settings.
  const n = o.workers ?? 2;
  const config = resolveRunConfig({ flags: { strategy: 'paillier', minFitClients: minFit, minEvaluateClients: minFit, minAvailableClients: n, keyBits: o.keyBits as RunConfig['keyBits'] } });
  const m = await measureAggregator('simulation', config);
  const path = join(runDir, 'attestation-policy.toml');
  await writeFileSafely(path, `# ${SIMULATION_LABEL}: development only\nkind = "simulation"\nmeasurement = "${m.measurement}"\nallow-simulation = true\nsimulation-signers = ["${signer}"]\n`, { mode: 0o644 });
  return path;
}
