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
import { simulate } from '../fl/simulate.ts';
import { createRpcTransport, startRpcServer } from '../fl/transport.ts';
import { runWorker } from '../fl/worker.ts';
import { describeServerEvent, describeWorkerEvent, summaryJson } from '../fl/describe.ts';
import type { ServerEvent } from '../fl/server.ts';
import { createProgress, progressMode } from '../core/progress.ts';
import { collect, intOption } from './options.ts';

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

async function configOf(opts: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<RunConfig> {
  const overrides = typeof opts['runConfig'] === 'string' ? parseRunConfigOverrides(opts['runConfig']) : {};
  const { runConfig: _pairs, ...flags } = opts;
  return loadRunConfig({ path: opts['config'] as string | undefined, env: process.env, flags: { ...overrides, ...flags, ...extra } });
}

function printer(json: boolean | undefined): (line: string, obj: object) => void {
  return (line, obj) => {
    if (json === true) process.stdout.write(`${JSON.stringify(obj)}\n`);
    else process.stderr.write(`${line}\n`);
  };
}

/**
 * Server events for a human: on a terminal, a bar of rounds (rate, ETA) with the event lines
 * printed above it; elsewhere the event lines themselves are the progress (no bar, no \r);
 * with --json, one JSON object per event on stdout.
 */
async function serverEventPrinter(json: boolean | undefined, rounds: number): Promise<{ onEvent: (e: ServerEvent) => void; done: () => void }> {
  const print = printer(json);
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
      .option('--json', 'print one JSON object per event on stdout; the last line is the summary'),
  ).action(async (opts: Record<string, unknown>) => {
    const w = opts['workers'] as number | undefined;
    const config = await configOf(opts, {
      ...(w === undefined ? {} : { minAvailableClients: w, minFitClients: w, minEvaluateClients: w }),
      ...(opts['rounds'] === undefined ? {} : { numServerRounds: opts['rounds'] }),
    });
    const events = await serverEventPrinter(opts['json'] as boolean | undefined, config.numServerRounds);
    const authorityTransport = config.authorityAddress === '' ? undefined : createRpcTransport({ address: config.authorityAddress, maxMessageBytes: config.maxMessageBytes, tls: { ca: config.tlsCa } });
    const strategy = await buildStrategy(config, authorityTransport === undefined ? {} : { authorityTransport });
    const evaluate = config.validateSet === '' ? undefined : await logRegEvaluator(config.validateSet, config.label);
    const server = new FlServer({ settings: serverSettings(config), strategy, ...(evaluate === undefined ? {} : { evaluate }), onEvent: events.onEvent });
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
    .option('--label <name>', 'label column', 'y')
    .option('--tls-ca <file>', 'CA certificate of the server (enables TLS)')
    .option('--max-message-bytes <n>', 'largest message accepted or sent', intOption('--max-message-bytes'), 64 << 20)
    .option('--seed <n>', 'local shuffling seed', intOption('--seed'), 1)
    .option('--validate-set <csv>', 'evaluate the final global model on this held-out set (when this worker may see the model)')
    .option('--log-every <n>', 'print training and evaluation lines every n rounds', intOption('--log-every'), 1)
    .option('--shard <k/n>', 'train on the k-th of n contiguous shards of --train-set (simulating several data owners)')
    .option('--drop-at <round:stage>', 'simulate a dropout: stop answering at this task (stage fit, share-keys, masked-input or unmask) and exit')
    .option('--json', 'print one JSON object per event on stdout')
    .action(async (o: { server: string; trainSet: string; id: string; token?: string; secret?: string; authority?: string; label: string; tlsCa?: string; maxMessageBytes: number; seed: number; validateSet?: string; logEvery: number; shard?: string; dropAt?: string; json?: boolean }) => {
      const print = printer(o.json);
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
      const tls = o.tlsCa === undefined ? {} : { tls: { ca: o.tlsCa } };
      const summary = await runWorker({
        workerId: o.id,
        token,
        client,
        transport: createRpcTransport({ address: o.server, maxMessageBytes: o.maxMessageBytes, ...tls }),
        ...(o.authority === undefined ? {} : { authorityTransport: createRpcTransport({ address: o.authority, maxMessageBytes: o.maxMessageBytes, ...tls }) }),
        ...(dropAt === undefined ? {} : { dropAt }),
        onEvent: (e) => {
          const quiet = (e.type === 'fit' || e.type === 'evaluate') && e.round !== 1 && e.round % Math.max(1, o.logEvery) !== 0;
          if (!quiet || o.json === true) print(describeWorkerEvent(o.id, e), { worker: o.id, ...e });
        },
      });
      const validation = o.validateSet !== undefined && summary.model !== null ? (await logRegEvaluator(o.validateSet, o.label))(summary.model) : null;
      const line = { worker: o.id, rounds: summary.rounds, reason: summary.reason, hasModel: summary.model !== null, ...(validation === null ? {} : { validation }) };
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
    .option('--json', 'print JSON lines')
    .action(async (o: { address: string; keyHolder: string; key?: string; keyBits: number; token?: string; minContributions: number; maxMessageBytes: number; tlsCert?: string; tlsKey?: string; json?: boolean }) => {
      if (o.keyHolder !== 'authority' && o.keyHolder !== 'clients') throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `expected "authority" or "clients", got "${o.keyHolder}"`, { param: '--key-holder' });
      const print = printer(o.json);
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
        onEvent: (e) => print(`key authority: ${e.type} for ${e.party}: ${e.detail}`, { authority: e.type, party: e.party, detail: e.detail }),
      });
      const srv = await startRpcServer({
        address: o.address,
        routes: (r) => authority.routes(r),
        maxMessageBytes: o.maxMessageBytes,
        ...(o.tlsCert === undefined || o.tlsKey === undefined ? {} : { tls: { cert: o.tlsCert, key: o.tlsKey } }),
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
    await runSimulationCommand(opts);
  });

  program
    .command('token')
    .description('print the token of one party, derived from the run secret (give each worker only its own)')
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
  const config = await configOf(rest, defaults);
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
