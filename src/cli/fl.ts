import { join } from 'node:path';
import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { packageRoot } from '../core/paths.ts';
import { readPrivateKeyFile, generatePaillierKeyPair, writeKeyPairFiles } from '../paillier/index.ts';
import { logRegClient, loadLogRegClient, logRegEvaluator } from '../fl/apps/logreg.ts';
import { loadCsvDataset, shardDataset } from '../ml/csv.ts';
import type { WorkerStage } from '../fl/worker.ts';
import { KeyAuthority } from '../fl/authority.ts';
import { describeRunConfig, loadRunConfig, runConfigOptions, type RunConfig } from '../fl/config.ts';
import { deriveToken } from '../fl/protocol.ts';
import { buildStrategy, numSupernodesOf, parseRunConfigOverrides, planSimulation, serverSettings, shardOf } from '../fl/run.ts';
import { readFile } from 'node:fs/promises';
import { FlServer } from '../fl/server.ts';
import { assertSimulable, simulate } from '../fl/simulate.ts';
import { DEV_MODE_WARNING, loadPartyTrust, type PartyTrust } from '../fl/identity-auth.ts';
import { minKeyBitsOption } from '../fl/key-pinning.ts';
import { INSECURE_PLAINTEXT_LABEL, createRpcTransport, isLoopbackHost, parseAddress, startRpcServer } from '../fl/transport.ts';
import { runWorker } from '../fl/worker.ts';
import { describeServerEvent, describeWorkerEvent, summaryJson } from '../fl/describe.ts';
import type { ServerEvent } from '../fl/server.ts';
import { createProgress, progressMode } from '../core/progress.ts';
import { collect, intOption } from './options.ts';
import { thresholdWorkerOptions } from './threshold-worker.ts';
import { readNnApp } from '../fl/apps/nn-config.ts';
import { assertTeeAvailable } from '../enclave/index.ts';
import { attestedWorkerSetup, runEnclaveServer } from './enclave.ts';
import { simulateNnCommand } from './fl-nn.ts';

/** Bundled breast cancer split (examples/data). */
export function bundled(name: string): string {
  return join(packageRoot(), 'examples', 'data', name);
}

function addConfigOptions(cmd: Command): Command {
  cmd.option('-c, --config <file>', 'run config (TOML, kebab-case keys)');
  cmd.option('--run-config <pairs>', 'Flower-style overrides of run-config keys, e.g. "num-server-rounds=5 strategy=paillier" (above the file and environment; a flag of the same key must agree)');
  for (const o of runConfigOptions()) cmd.option(o.flag, o.description);
  return cmd;
}

async function configOf(opts: Record<string, unknown>, extra: Record<string, unknown> = {}, check?: (merged: Readonly<RunConfig>) => void): Promise<RunConfig> {
  const overrides = typeof opts['runConfig'] === 'string' ? parseRunConfigOverrides(opts['runConfig']) : {};
  const { runConfig: _pairs, ...flags } = opts;
  return loadRunConfig({ path: opts['config'] as string | undefined, env: process.env, flags: { ...overrides, ...flags, ...extra }, check });
}

/**
 * A progress printer. `plaintext` marks a party started with --insecure-plaintext that talks to
 * or listens on a non-loopback address: then every line (human or JSON) carries the label.
 */
function printer(json: boolean | undefined, plaintext = false): (line: string, obj: object) => void {
  return (line, obj) => {
    if (json === true) process.stdout.write(`${JSON.stringify(plaintext ? { ...obj, transport: 'insecure-plaintext' } : obj)}\n`);
    else process.stderr.write(`${plaintext ? `${INSECURE_PLAINTEXT_LABEL} ` : ''}${line}\n`);
  };
}

/** True when --insecure-plaintext actually matters: some address of this party is not loopback. */
function plaintextOffLoopback(insecure: boolean | undefined, addresses: readonly string[]): boolean {
  return insecure === true && addresses.some((a) => a !== '' && !isLoopbackHost(parseAddress(a).host));
}

/**
 * Identity mode or the insecure development mode, with the warning the latter prints on every start.
 *
 * @example
 * ```ts
 * const trust = await trustOf(config.identity, config.roster, 'server', opts.insecureDevTokens, print); // null: development mode
 * ```
 */
export async function trustOf(identity: string, roster: string, role: 'server' | 'worker' | 'authority', devTokens: boolean | undefined, print: (line: string, obj: object) => void): Promise<PartyTrust | null> {
  const trust = await loadPartyTrust(identity, roster, role);
  if (trust !== null && devTokens === true) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', '--insecure-dev-tokens cannot be combined with identity and roster: choose identity mode or the development mode', { param: '--insecure-dev-tokens' });
  }
  if (trust === null) print(DEV_MODE_WARNING, { event: 'warning', warning: 'insecure-dev-tokens', message: DEV_MODE_WARNING });
  else print(`${role}: identity mode as ${trust.identity.role} ${trust.identity.id} (${trust.identity.fingerprint.slice(0, 16)}…), ${trust.roster.parties.length} pinned identities`, { event: 'identity', role, id: trust.identity.id, fingerprint: trust.identity.fingerprint });
  return trust;
}

interface WorkerFlags {
  server: string;
  thresholdPublicKey?: string;
  thresholdFingerprint?: string;
  trainSet: string;
  id: string;
  token?: string;
  secret?: string;
  authority?: string;
  identity?: string;
  roster?: string;
  paillierKeyFingerprint?: string;
  strategy?: string;
  keyHolder?: string;
  insecureMinKeyBits?: number;
  insecurePlaintext?: boolean;
  insecureDevTokens?: boolean;
  label: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  maxMessageBytes: number;
  seed: number;
  validateSet?: string;
  logEvery: number;
  shard?: string;
  dropAt?: string;
  requireAttestation?: string;
  runId?: string;
  json?: boolean;
}

interface AuthorityFlags {
  address: string;
  keyHolder: string;
  key?: string;
  keyBits: number;
  token?: string;
  minContributions: number;
  maxMessageBytes: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  identity?: string;
  roster?: string;
  insecurePlaintext?: boolean;
  insecureDevTokens?: boolean;
  json?: boolean;
}

/**
 * Server events for a human: on a terminal, a bar of rounds (rate, ETA) with the event lines
 * printed above it; elsewhere the event lines themselves are the progress (no bar, no \r);
 * with --json, one JSON object per event on stdout.
 */
async function serverEventPrinter(json: boolean | undefined, rounds: number, plaintext = false): Promise<{ onEvent: (e: ServerEvent) => void; done: () => void }> {
  const print = printer(json, plaintext);
  const toObj = (e: ServerEvent): object => ({ event: e.type, ...(e.type === 'finished' ? {} : e) });
  if (json === true || progressMode(process.stderr, false) !== 'bar') return { onEvent: (e) => print(describeServerEvent(e), toObj(e)), done: () => undefined };
  const bar = await createProgress({ label: 'rounds', total: rounds, unit: 'rounds' });
  return {
    onEvent: (e) => {
      bar.log(describeServerEvent(e));
      if (e.type === 'round-end') bar.update(e.record.round, `round ${e.record.round}`);
    },
    done: () => bar.finish(),
  };
}

const STAGES: readonly WorkerStage[] = ['fit', 'share-keys', 'masked-input', 'unmask'];

function parseDropAt(text: string): { round: number; stage: WorkerStage } {
  const m = /^(\d+):([a-z-]+)$/.exec(text);
  const stage = STAGES.find((s) => s === m?.[2]);
  if (m === null || stage === undefined || Number(m[1]) < 1) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected round:stage with stage one of ${STAGES.join(', ')} (e.g. 2:masked-input), got "${text}"`, { param: '--drop-at' });
  }
  return { round: Number(m[1]), stage };
}

/** `cipherml server|worker|key-authority|simulate|token` */
export function registerFlCommands(program: Command): void {
  addConfigOptions(
    program
      .command('server')
      .description('federated parameter server (workers connect to it); settings from --config, CIPHERML_* variables and flags')
      .option('--workers <n>', 'shorthand: min-available-, min-fit- and min-evaluate-clients', intOption('--workers'))
      .option('--rounds <n>', 'shorthand for --num-server-rounds', intOption('--rounds'))
      .option('--insecure-plaintext', 'allow plaintext HTTP/2 on a non-loopback address (every progress line says so)')
      .option('--insecure-dev-tokens', 'development mode: run-secret tokens instead of identities (the server can mint any worker\'s token)')
      .option('--tee <kind>', 'run as the attested aggregator (docs/enclave.md): simulation (no hardware isolation), or sgx|tdx|sev-snp|nitro (refused on machines without that TEE)')
      .option('--sealing-secret <file>', 'with --tee simulation: the local sealing secret (created 0600 if missing; default <run-dir>/simulation.sealing-secret)')
      .option('--json', 'print one JSON object per event on stdout; the last line is the summary'),
  ).action(async (opts: Record<string, unknown>) => {
    // A TEE kind this machine cannot provide is refused before anything else is read or created.
    if (typeof opts['tee'] === 'string') assertTeeAvailable(opts['tee']);
    const w = opts['workers'] as number | undefined;
    const config = await configOf(opts, {
      ...(w === undefined ? {} : { minAvailableClients: w, minFitClients: w, minEvaluateClients: w }),
      ...(opts['rounds'] === undefined ? {} : { numServerRounds: opts['rounds'] }),
    });
    const insecurePlaintext = opts['insecurePlaintext'] === true;
    const plaintext = plaintextOffLoopback(insecurePlaintext, [config.address, config.authorityAddress]);
    const print = printer(opts['json'] as boolean | undefined, plaintext);
    if (typeof opts['tee'] === 'string') {
      const trust = await trustOf(config.identity, config.roster, 'server', opts['insecureDevTokens'] as boolean | undefined, print);
      return runEnclaveServer(config, { tee: opts['tee'], ...(typeof opts['sealingSecret'] === 'string' ? { sealingSecret: opts['sealingSecret'] } : {}), ...(opts['json'] === true ? { json: true } : {}) }, trust);
    }
    const trust = await trustOf(config.identity, config.roster, 'server', opts['insecureDevTokens'] as boolean | undefined, print);
    const events = await serverEventPrinter(opts['json'] as boolean | undefined, config.numServerRounds, plaintext);
    const authorityTransport = config.authorityAddress === '' ? undefined : createRpcTransport({ address: config.authorityAddress, maxMessageBytes: config.maxMessageBytes, tls: { ca: config.tlsCa, ...(config.tlsCert === '' ? {} : { cert: config.tlsCert, key: config.tlsKey }) }, insecurePlaintext });
    const strategy = await buildStrategy(config, { ...(authorityTransport === undefined ? {} : { authorityTransport }), trust });
    const evaluate = config.validateSet === '' ? undefined : await logRegEvaluator(config.validateSet, config.label);
    const server = new FlServer({ settings: serverSettings(config, { trust, insecurePlaintext }), strategy, ...(evaluate === undefined ? {} : { evaluate }), onEvent: events.onEvent });
    await server.listen();
    try {
      const summary = await server.run();
      events.done();
      if (opts['json'] === true) process.stdout.write(`${JSON.stringify(summaryJson(summary))}\n`);
      else process.stdout.write(`${JSON.stringify(summaryJson(summary), null, 2)}\n`);
    } finally {
      await server.close(3000);
    }
  });

  program
    .command('worker')
    .description('federated worker (data owner): trains logistic regression on its CSV and sends updates to the server')
    .requiredOption('--server <host:port>', 'the parameter server')
    .requiredOption('--train-set <csv>', 'local training data (header row; label column named by --label)')
    .requiredOption('--id <id>', 'this worker\'s id (unique per run)')
    .option('--token <token>', 'this worker\'s token (from `cipherml token`); or set CIPHERML_WORKER_TOKEN')
    .option('--secret <secret>', 'derive the token from the run secret (demos on one machine)')
    .option('--authority <host:port>', 'the key authority (key-holder "clients")')
    .option('--identity <file>', 'this worker\'s identity file (identity mode, with --roster; key-holder "threshold": signs every update)')
    .option('--roster <file>', 'roster of pinned public identities (server, key authority)')
    .option('--paillier-key-fingerprint <hex>', 'encrypt only under the Paillier key with this fingerprint')
    .option('--strategy <s>', 'refuse a server that announces another strategy (e.g. paillier)')
    .option('--key-holder <k>', 'refuse a server that announces another Paillier key holder')
    .option('--insecure-min-key-bits <bits>', 'TESTS ONLY: accept Paillier keys down to this many bits (default 2048)', intOption('--insecure-min-key-bits'))
    .option('--insecure-plaintext', 'allow plaintext to non-loopback addresses (every progress line says so)')
    .option('--insecure-dev-tokens', 'development mode: a run-secret token instead of an identity')
    .option('--label <name>', 'label column', 'y')
    .option('--tls-ca <file>', 'CA certificate that verifies the server and the authority (default: system roots off loopback)')
    .option('--tls-cert <file>', 'client certificate for mutual TLS (with --tls-key)')
    .option('--tls-key <file>', 'private key of --tls-cert')
    .option('--max-message-bytes <n>', 'largest message accepted or sent', intOption('--max-message-bytes'), 64 << 20)
    .option('--seed <n>', 'local shuffling seed', intOption('--seed'), 1)
    .option('--validate-set <csv>', 'evaluate the final global model on this held-out set (when this worker may see the model)')
    .option('--log-every <n>', 'print training and evaluation lines every n rounds', intOption('--log-every'), 1)
    .option('--shard <k/n>', 'train on the k-th of n contiguous shards of --train-set (simulating several data owners)')
    .option('--drop-at <round:stage>', 'simulate a dropout: stop answering at this task (stage fit, share-keys, masked-input or unmask) and exit')
    .option('--threshold-public-key <file>', 'key-holder "threshold": encrypt only under this threshold.pub (with --threshold-fingerprint and --identity)')
    .option('--threshold-fingerprint <hex>', 'key-holder "threshold": the pinned fingerprint of --threshold-public-key')
    .option('--require-attestation <policy>', 'verify the aggregator\'s attestation under this policy file (docs/enclave.md) and its binding of the Paillier key, TLS key and run before sending anything')
    .option('--run-id <id>', 'with --require-attestation: refuse an attestation of any other run')
    .option('--json', 'print one JSON object per event on stdout')
    .action(async (o: WorkerFlags) => {
      const print = printer(o.json, plaintextOffLoopback(o.insecurePlaintext, [o.server, o.authority ?? '']));
      // With --require-attestation the lines before the attestation check are held back, so they
      // carry the aggregator's isolation label ("simulation: no hardware isolation") like every later one.
      const held: [string, object][] = [];
      const early = o.requireAttestation === undefined ? print : (line: string, obj: object) => void held.push([line, obj]);
      const flushHeld = (label: string) => {
        for (const [line, obj] of held.splice(0)) print(`${label}${line}`, obj);
      };
      const trust = await trustOf(o.identity ?? '', o.roster ?? '', 'worker', o.insecureDevTokens, early);
      if (o.paillierKeyFingerprint !== undefined && !/^[0-9a-fA-F]{32}$/.test(o.paillierKeyFingerprint)) {
        throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--paillier-key-fingerprint must be 32 hex digits, got ${JSON.stringify(o.paillierKeyFingerprint)}`, { param: '--paillier-key-fingerprint' });
      }
      const minKeyBits = minKeyBitsOption(o.insecureMinKeyBits);
      const token = o.token ?? process.env['CIPHERML_WORKER_TOKEN'] ?? (o.secret === undefined ? '' : deriveToken(o.secret, o.id));
      const hyper = { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed: o.seed };
      let client;
      if (o.shard === undefined) client = await loadLogRegClient(o.trainSet, o.label, hyper);
      else {
        const m = /^(\d+)\/(\d+)$/.exec(o.shard);
        if (m === null) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected k/n such as 2/3, got "${o.shard}"`, { param: '--shard' });
        client = logRegClient(shardDataset(await loadCsvDataset(o.trainSet, { label: o.label }), Number(m[1]), Number(m[2])), hyper);
      }
      const dropAt = o.dropAt === undefined ? undefined : parseDropAt(o.dropAt);
      let attested: Awaited<ReturnType<typeof attestedWorkerSetup>> | null = null;
      if (o.requireAttestation !== undefined) {
        try {
          attested = await attestedWorkerSetup(o.server, o.requireAttestation, o.runId, o.maxMessageBytes, print);
        } finally {
          flushHeld(attested?.label ?? '');
        }
      }
      const tls = { tls: { ...(o.tlsCa === undefined ? {} : { ca: o.tlsCa }), ...(o.tlsCert === undefined ? {} : { cert: o.tlsCert }), ...(o.tlsKey === undefined ? {} : { key: o.tlsKey }) }, insecurePlaintext: o.insecurePlaintext === true };
      const summary = await runWorker({
        workerId: o.id,
        token,
        client,
        trust,
        // Identity mode also makes secure aggregation actively secure: signed advertised keys,
        // checked against the workers pinned in the same roster.
        ...(trust === null ? {} : { secagg: { identity: trust.identity, peers: trust.roster } }),
        ...(o.paillierKeyFingerprint === undefined ? {} : { pinnedKeyFingerprint: o.paillierKeyFingerprint.toLowerCase() }),
        ...minKeyBits,
        expect: { ...(o.strategy === undefined ? {} : { strategy: o.strategy }), ...(o.keyHolder === undefined ? {} : { keyHolder: o.keyHolder }) },
        transport: attested?.transport ?? createRpcTransport({ address: o.server, maxMessageBytes: o.maxMessageBytes, ...tls }),
        ...(attested === null ? {} : { attestedKey: attested.attestedKey }),
        ...(o.authority === undefined ? {} : { authorityTransport: createRpcTransport({ address: o.authority, maxMessageBytes: o.maxMessageBytes, ...tls }) }),
        ...(dropAt === undefined ? {} : { dropAt }),
        ...(await thresholdWorkerOptions(o.id, o.thresholdPublicKey, o.thresholdFingerprint, o.identity)),
        onEvent: (e) => {
          const quiet = (e.type === 'fit' || e.type === 'evaluate') && e.round !== 1 && e.round % Math.max(1, o.logEvery) !== 0;
          if (!quiet || o.json === true) print(`${attested?.label ?? ''}${describeWorkerEvent(o.id, e)}`, { worker: o.id, ...e, ...(attested === null ? {} : { isolation: attested.isolation }) });
        },
      });
      const validation = o.validateSet !== undefined && summary.model !== null ? (await logRegEvaluator(o.validateSet, o.label))(summary.model) : null;
      const line = { worker: o.id, rounds: summary.rounds, reason: summary.reason, hasModel: summary.model !== null, ...(validation === null ? {} : { validation }), ...(attested === null ? {} : { isolation: attested.isolation }) };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      // A simulated dropout vanishes like a crashed device: no goodbye, open connections cut.
      if (dropAt !== undefined && summary.reason.startsWith('simulated dropout')) process.exit(0);
    });

  program
    .command('key-authority')
    .description('key authority (model owner): holds the Paillier key pair; serves the public key, and decrypts aggregates (key-holder authority) or hands the key pair to workers (key-holder clients)')
    .option('--address <host:port>', 'listen address', '127.0.0.1:9092')
    .option('--key-holder <mode>', 'authority | clients', 'authority')
    .option('--key <path>', 'secret key file to use (created with its .pub beside it when missing)')
    .option('--key-bits <bits>', 'modulus size when generating', intOption('--key-bits'), 2048)
    .option('--token <secret>', 'run secret (or CIPHERML_TOKEN)')
    .option('--min-contributions <n>', 'refuse to decrypt sums of fewer updates', intOption('--min-contributions'), 2)
    .option('--max-message-bytes <n>', 'largest message', intOption('--max-message-bytes'), 64 << 20)
    .option('--tls-cert <file>', 'TLS certificate')
    .option('--tls-key <file>', 'TLS private key')
    .option('--tls-ca <file>', 'CA that verifies client certificates (mutual TLS)')
    .option('--identity <file>', 'this authority\'s identity file (identity mode, with --roster)')
    .option('--roster <file>', 'roster of pinned public identities (server, workers)')
    .option('--insecure-plaintext', 'allow plaintext on a non-loopback address (every progress line says so)')
    .option('--insecure-dev-tokens', 'development mode: run-secret tokens instead of identities')
    .option('--json', 'print JSON lines')
    .action(async (o: AuthorityFlags) => {
      if (o.keyHolder !== 'authority' && o.keyHolder !== 'clients') throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `expected "authority" or "clients", got "${o.keyHolder}"`, { param: '--key-holder' });
      if (!(o.minContributions >= 1)) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `--min-contributions must be at least 1 (2 or more keeps single updates private), got ${o.minContributions}`, { param: '--min-contributions' });
      const print = printer(o.json, plaintextOffLoopback(o.insecurePlaintext, [o.address]));
      const trust = await trustOf(o.identity ?? '', o.roster ?? '', 'authority', o.insecureDevTokens, print);
      let keyPair;
      if (o.key !== undefined) {
        try {
          const sk = await readPrivateKeyFile(o.key);
          keyPair = { publicKey: sk.publicKey, privateKey: sk };
        } catch (e) {
          if (!(e instanceof CipherMLError && e.code === 'CIPHERML_E_IO')) throw e;
          keyPair = await generatePaillierKeyPair({ bits: o.keyBits });
          await writeKeyPairFiles(o.key, keyPair);
        }
      } else {
        keyPair = await generatePaillierKeyPair({ bits: o.keyBits });
      }
      const authority = new KeyAuthority({
        keyPair,
        keyHolder: o.keyHolder,
        secret: o.token ?? process.env['CIPHERML_TOKEN'] ?? '',
        minContributions: o.minContributions,
        trust,
        onEvent: (e) => print(`key authority: ${e.type} for ${e.party}: ${e.detail}`, { authority: e.type, party: e.party, detail: e.detail }),
      });
      const srv = await startRpcServer({
        address: o.address,
        routes: (r) => authority.routes(r),
        maxMessageBytes: o.maxMessageBytes,
        ...(o.tlsCert === undefined || o.tlsKey === undefined ? {} : { tls: { cert: o.tlsCert, key: o.tlsKey, ...(o.tlsCa === undefined ? {} : { ca: o.tlsCa }) } }),
        insecurePlaintext: o.insecurePlaintext === true,
      });
      print(`key authority: listening on ${srv.address}, key ${keyPair.publicKey.fingerprint} (${keyPair.publicKey.bits} bits), key holder ${o.keyHolder}`, { authority: 'listening', address: srv.address, fingerprint: keyPair.publicKey.fingerprint });
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await srv.close();
    });

  addConfigOptions(
    program
      .command('simulate')
      .description('all parties in one process (same server, strategy and worker code, in-memory transport): logistic regression on CSV shards')
      .option('--train-set <csv>', 'training data (repeat); workers are dealt over the files, which they split in shards; default: the bundled breast_homo guest and host', collect)
      .option('--num-supernodes <n>', 'simulated workers (Flower\'s options.num-supernodes; default: that key of --config, else one per --train-set but at least min-available-clients)', intOption('--num-supernodes'))
      .option('--json', 'print JSON lines; the last line is the summary'),
  ).action(async (opts: Record<string, unknown>) => {
    // A run config with an [app] table is a federated image-classification run (src/cli/fl-nn.ts).
    if (typeof opts['config'] === 'string' && (await readNnApp(opts['config'])) !== null) return simulateNnCommand(opts);
    await runSimulationCommand(opts);
  });

  program
    .command('token')
    .description('INSECURE DEVELOPMENT MODE: print the token of one party, derived from the run secret (whoever holds the secret, the server included, can derive every token; use `cipherml identity` instead)')
    .requiredOption('--secret <secret>', 'the run secret (the servers\' `token` setting)')
    .requiredOption('--id <id>', 'worker id, or "server" for the aggregating server\'s token at the key authority')
    .action((o: { secret: string; id: string }) => {
      process.stdout.write(`${deriveToken(o.secret, o.id)}\n`);
    });
}

/**
 * `cipherml simulate` (and `cipherml run`): all parties in one process. The number of workers
 * comes from --num-supernodes or the config's `options.num-supernodes`, and a count that cannot
 * fill a round is refused before any work.
 */
export async function runSimulationCommand(opts: Record<string, unknown>): Promise<void> {
  const trainSets = (opts['trainSet'] as string[] | undefined) ?? [bundled('breast_homo_guest.csv'), bundled('breast_homo_host.csv')];
  const defaults: Record<string, unknown> = {};
  if (opts['validateSet'] === undefined && process.env['CIPHERML_VALIDATE_SET'] === undefined) defaults['validateSet'] = bundled('breast_homo_test.csv');
  // In one process the key authority is in-memory; its address is only a placeholder.
  if (opts['authorityAddress'] === undefined && process.env['CIPHERML_AUTHORITY_ADDRESS'] === undefined) defaults['authorityAddress'] = 'in-process:1';
  const { numSupernodes: flagSupernodes, trainSet: _t, ...rest } = opts;
  const config = await configOf(rest, defaults, assertSimulable);
  const configPath = opts['config'] as string | undefined;
  const fromFile = configPath === undefined ? undefined : numSupernodesOf(await readFile(configPath, 'utf8'), configPath);
  const plan = planSimulation(config, {
    numSupernodes: (flagSupernodes as number | undefined) ?? fromFile,
    numSupernodesSource: flagSupernodes !== undefined ? '--num-supernodes' : `options.num-supernodes (in ${configPath ?? 'the config'})`,
    trainSets: trainSets.length,
  });
  const print = printer(opts['json'] as boolean | undefined);
  const datasets = await Promise.all(trainSets.map((path) => loadCsvDataset(path, { label: config.label })));
  const clients = Array.from({ length: plan.numSupernodes }, (_, i) => {
    const { file, shard, of } = shardOf(i, plan.numSupernodes, trainSets.length);
    const data = of === 1 ? datasets[file]! : shardDataset(datasets[file]!, shard, of);
    return { id: String(i + 1), client: logRegClient(data, { localEpochs: config.localEpochs, batchSize: config.batchSize, learningRate: config.learningRate, l2: config.l2, seed: config.seed + i }) };
  });
  const evaluate = config.validateSet === '' ? undefined : await logRegEvaluator(config.validateSet, config.label);
  print(`simulate: ${clients.length} workers, config ${JSON.stringify(describeRunConfig(config))}`, { event: 'config', workers: clients.length, config: describeRunConfig(config) });
  const events = await serverEventPrinter(opts['json'] as boolean | undefined, config.numServerRounds);
  const { server } = await simulate({ config, clients, ...(evaluate === undefined ? {} : { evaluate }), onServerEvent: events.onEvent });
  events.done();
  process.stdout.write(`${JSON.stringify(summaryJson(server))}\n`);
}
