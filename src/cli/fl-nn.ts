import { writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { writeFileSafely } from '../core/io.ts';
import { DEFAULT_NN_APP, NN_APP_KEYS, readNnApp, resolveNnApp, type NnAppConfig } from '../fl/apps/nn-config.ts';
import { clientData, describeNnRun, loadNnData, loadNnTest, nnDefaults, nnRunConfig, nnServerSettings, simulateNn, wrapForApp } from '../fl/apps/nn-run.ts';
import { initialModel, nnClient, nnEvaluator } from '../fl/apps/nn.ts';
import { loadRunConfig, runConfigOptions, type RunConfig } from '../fl/config.ts';
import { describeServerEvent, describeWorkerEvent, summaryJson } from '../fl/describe.ts';
import { readRunModel } from '../fl/export-checkpoint.ts';
import { deriveToken } from '../fl/protocol.ts';
import { buildStrategy, expandRunDir, serverSettings, splitRunConfigOverrides } from '../fl/run.ts';
import { minKeyBitsOption } from '../fl/key-pinning.ts';
import { FlServer, type RunSummary } from '../fl/server.ts';
import { assertSimulable } from '../fl/simulate.ts';
import { createRpcTransport } from '../fl/transport.ts';
import { runWorker } from '../fl/worker.ts';
import { partitionName } from '../ml/partition.ts';
import { exportOnnx } from '../inference/export-nn.ts';
import { loadEngine } from '../ml/nn/engine.ts';
import { SIMULATION_LABEL } from '../attest/index.ts';
import { assertTeeAvailable } from '../enclave/index.ts';
import { assertEnclaveConfig, attestedWorkerSetup, runEnclaveServer } from './enclave.ts';
import { trustOf } from './fl.ts';
import { intOption } from './options.ts';
import { thresholdWorkerOptions } from './threshold-worker.ts';

/** `cipherml fl nn-server | nn-worker | export-onnx`: federated neural networks on image data. */

const APP_OPTIONS: readonly [string, string][] = [
  ['--dataset <name>', 'mnist | fashion-mnist (default mnist)'],
  ['--data-dir <dir>', 'folder of the four IDX files (default: the bundled copy in examples/fl-mnist)'],
  ['--model <name>', 'lenet5 | lenet5-he | cnn | mlp (default lenet5)'],
  ['--partition <scheme>', 'iid | shards:K | dirichlet:α (default dirichlet:0.5)'],
  ['--num-clients <n>', 'clients the training set is partitioned among (default 10)'],
  ['--train-limit <n>', 'use the first n training images (0: all)'],
  ['--test-limit <n>', 'use the first n test images (0: all)'],
  ['--momentum <m>', 'local SGD momentum in [0, 1) (default 0.9)'],
  ['--proximal-mu <mu>', 'FedProx μ ≥ 0 (default 0: FedAvg)'],
  ['--server-optimizer <name>', 'fedavg | fedadam | fedyogi | fedadagrad (default fedavg)'],
  ['--server-learning-rate <eta>', 'η of the server optimizer (default 0.01)'],
  ['--engine <backend>', 'wasm | cpu (default wasm)'],
];

function addOptions(cmd: Command): Command {
  cmd.option('-c, --config <file>', 'run config (TOML: runtime keys at the top or under [tool.cipherml], app keys under [app])');
  for (const o of runConfigOptions()) cmd.option(o.flag, o.description);
  for (const [flag, text] of APP_OPTIONS) cmd.option(flag, text);
  cmd.option('--insecure-dev-tokens', 'development mode: run-secret tokens instead of identities (--identity and --roster turn on identity mode)');
  return cmd.option('--json', 'print one JSON object per event on stdout; the last line is the summary');
}

/**
 * The run config and the app config of a command: the file, then `--run-config` (runtime and
 * [app] keys alike, as Flower's run config; a key of neither is refused), then the flags.
 */
async function configs(opts: Record<string, unknown>, extra: Record<string, unknown> = {}, check?: (merged: Readonly<RunConfig>) => void): Promise<{ config: RunConfig; app: NnAppConfig }> {
  const path = opts['config'] as string | undefined;
  const { runConfig: pairs, ...flags } = opts;
  const overrides = typeof pairs === 'string' ? splitRunConfigOverrides(pairs, NN_APP_KEYS) : { runtime: {}, app: {} };
  const config = await loadRunConfig({ path, env: process.env, flags: { ...overrides.runtime, ...flags, ...extra }, check });
  const fromFile = path === undefined ? null : await readNnApp(path);
  const app = resolveNnApp(flags, resolveNnApp(overrides.app, fromFile ?? DEFAULT_NN_APP, '--run-config ', true), '--');
  return { config: nnRunConfig(config, app), app };
}

function printer(json: boolean | undefined): (line: string, obj: object) => void {
  return (line, obj) => {
    if (json === true) process.stdout.write(`${JSON.stringify(obj)}\n`);
    else process.stderr.write(`${line}\n`);
  };
}

/** The run's app config beside its checkpoint (`fl export-onnx` reads the architecture from it). */
async function writeAppJson(runDir: string, app: NnAppConfig): Promise<void> {
  await mkdir(runDir, { recursive: true });
  await writeFile(join(runDir, 'app.json'), `${JSON.stringify({ ...app, partition: partitionName(app.partition) }, null, 2)}\n`);
}

/** The printer of an aggregator started with --tee simulation: every line carries the isolation label. */
function simulationPrinter(json: boolean | undefined): (line: string, obj: object) => void {
  return (line, obj) => {
    if (json === true) process.stdout.write(`${JSON.stringify({ ...obj, isolation: SIMULATION_LABEL })}\n`);
    else process.stderr.write(`[${SIMULATION_LABEL}] ${line}\n`);
  };
}

/** The demo's and the server's summary line. */
export function nnSummary(summary: RunSummary, app: NnAppConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...summaryJson(summary), clients: app.numClients, partition: partitionName(app.partition), dataset: app.dataset, model: app.model, serverOptimizer: app.serverOptimizer, proximalMu: app.proximalMu, ...extra };
}

/** Registers `cipherml fl …`. */
export function registerFlNnCommands(program: Command): void {
  const fl = program.command('fl').description('federated neural networks on MNIST / Fashion-MNIST (LeNet-5, CNN, MLP) and export of the trained model');

  addOptions(
    fl
      .command('nn-server')
      .description('parameter server of a federated image-classification run; evaluates the global model on the test set')
      .option('--tee <kind>', 'run as the attested aggregator (docs/enclave.md; strategy paillier, identity mode): simulation (no hardware isolation), or sgx|tdx|sev-snp|nitro (refused on machines without that TEE)')
      .option('--sealing-secret <file>', 'with --tee simulation: the local sealing secret (created 0600 if missing; default <run-dir>/simulation.sealing-secret)'),
  ).action(async (opts: Record<string, unknown>) => {
    const { tee, sealingSecret, ...rest } = opts;
    // A TEE kind this machine cannot provide is refused before anything else is read or created.
    if (typeof tee === 'string') assertTeeAvailable(tee);
    const resolved = await configs(rest);
    const app = resolved.app;
    // The run folder's placeholders are filled once, so app.json lands beside the checkpoint.
    const config: RunConfig = { ...resolved.config, runDir: expandRunDir(resolved.config.runDir, resolved.config) };
    const print = typeof tee === 'string' ? simulationPrinter(opts['json'] as boolean | undefined) : printer(opts['json'] as boolean | undefined);
    const trust = await trustOf(config.identity, config.roster, 'server', opts['insecureDevTokens'] as boolean | undefined, print);
    if (typeof tee === 'string') assertEnclaveConfig(config, trust);
    if (typeof tee === 'string' && app.serverOptimizer !== 'fedavg') {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `--tee runs FedAvg inside the enclave; --server-optimizer ${app.serverOptimizer} is not part of the attested configuration the workers verify`, { param: '--server-optimizer', advice: 'Drop --server-optimizer (or set it to fedavg) with --tee.' });
    }
    const { tf } = await loadEngine(app.engine);
    const data = await loadNnData(app, config.seed);
    for (const l of describeNnRun(app, data)) print(l, { event: 'data', line: l });
    const test = await loadNnTest(app);
    if (typeof tee === 'string') {
      await writeAppJson(config.runDir, app);
      return runEnclaveServer(config, { tee, ...(typeof sealingSecret === 'string' ? { sealingSecret } : {}), ...(opts['json'] === true ? { json: true } : {}) }, trust, {
        evaluate: nnEvaluator(tf, data.spec, test),
        initialModel: initialModel(data.spec, config.seed),
        settings: nnServerSettings(config),
        summary: (summary) => nnSummary(summary, app),
      });
    }
    const authorityTransport = config.authorityAddress === '' ? undefined : createRpcTransport({ address: config.authorityAddress, maxMessageBytes: config.maxMessageBytes, tls: { ca: config.tlsCa } });
    const strategy = wrapForApp(app)(await buildStrategy(config, { ...(authorityTransport === undefined ? {} : { authorityTransport }), trust }));
    await writeAppJson(config.runDir, app);
    const server = new FlServer({
      settings: serverSettings(config, { ...nnServerSettings(config), trust }),
      strategy,
      evaluate: nnEvaluator(tf, data.spec, test),
      initialModel: initialModel(data.spec, config.seed),
      onEvent: (e) => print(describeServerEvent(e), { event: e.type, ...(e.type === 'finished' ? {} : e) }),
    });
    await server.listen();
    try {
      const summary = await server.run();
      process.stdout.write(`${JSON.stringify(nnSummary(summary, app))}\n`);
    } finally {
      await server.close(3000);
    }
  });

  addOptions(
    fl
      .command('nn-worker')
      .description('federated worker: takes its part of the partitioned training set (the same partition in every process for the same seed) and trains the model')
      .requiredOption('--id <id>', "this worker's id; with --client unset, also its client number 1..num-clients")
      .option('--client <k>', 'which part of the partition to train on (1..num-clients; default: --id)', intOption('--client'))
      .option('--server <host:port>', 'the parameter server (default: the address key)')
      .option('--authority <host:port>', 'the key authority (key-holder "clients")')
      .option('--secret <secret>', 'derive the token from the run secret (demos on one machine)')
      .option('--insecure-min-key-bits <bits>', 'TESTS ONLY: accept Paillier keys down to this many bits (default 2048)', intOption('--insecure-min-key-bits'))
      .option('--require-attestation <policy>', "verify the aggregator's attestation under this policy file (docs/enclave.md) and its binding of the Paillier key, TLS key and run before sending anything")
      .option('--run-id <id>', 'with --require-attestation: refuse an attestation of any other run'),
  ).action(async (opts: Record<string, unknown>) => {
    const minKeyBits = minKeyBitsOption(opts['insecureMinKeyBits'] as number | undefined);
    // --threshold-public-key and --threshold-fingerprint pin this worker to a threshold key (as on
    // `cipherml worker`); they are not the server's key-holder settings, so they stay out of its config checks.
    const { thresholdPublicKey, thresholdFingerprint, requireAttestation, runId, ...rest } = opts;
    const { config, app } = await configs(rest);
    const json = opts['json'] as boolean | undefined;
    const basePrint = printer(json);
    // With --require-attestation the lines before the attestation check are held back, so they
    // carry the aggregator's isolation label like every later one.
    const held: [string, object][] = [];
    const print = typeof requireAttestation === 'string' ? (line: string, obj: object) => void held.push([line, obj]) : basePrint;
    const trust = await trustOf(config.identity, config.roster, 'worker', opts['insecureDevTokens'] as boolean | undefined, print);
    const orUnset = (v: string): string | undefined => (v === '' ? undefined : v);
    const threshold = await thresholdWorkerOptions(
      opts['id'] as string,
      (thresholdPublicKey as string | undefined) ?? orUnset(config.thresholdPublicKey),
      (thresholdFingerprint as string | undefined) ?? orUnset(config.thresholdFingerprint),
      orUnset(config.identity),
    );
    const id = opts['id'] as string;
    const k = (opts['client'] as number | undefined) ?? Number(id);
    if (!Number.isInteger(k) || k < 1 || k > app.numClients) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `client ${JSON.stringify(opts['client'] ?? id)} is not in 1..${app.numClients}`, { param: opts['client'] === undefined ? '--id' : '--client' });
    const { tf } = await loadEngine(app.engine);
    const data = await loadNnData(app, config.seed);
    const mine = clientData(data, k);
    print(`worker ${id}: client ${k} of ${app.numClients}, ${mine.count} images, labels [${data.partition.clients[k - 1]!.histogram.join(' ')}]`, { worker: id, client: k, images: mine.count, histogram: data.partition.clients[k - 1]!.histogram });
    const secret = opts['secret'] as string | undefined;
    const token = process.env['CIPHERML_WORKER_TOKEN'] ?? (secret === undefined ? config.token === '' ? '' : deriveToken(config.token, id) : deriveToken(secret, id));
    const address = (opts['server'] as string | undefined) ?? config.address;
    const tls = config.tlsCa === '' ? {} : { tls: { ca: config.tlsCa } };
    let attested: Awaited<ReturnType<typeof attestedWorkerSetup>> | null = null;
    if (typeof requireAttestation === 'string') {
      try {
        attested = await attestedWorkerSetup(address, requireAttestation, runId as string | undefined, config.maxMessageBytes, basePrint);
      } finally {
        for (const [line, obj] of held.splice(0)) basePrint(`${attested?.label ?? ''}${line}`, { ...obj, ...(attested === null ? {} : { isolation: attested.isolation }) });
      }
    }
    const label = attested?.label ?? '';
    const summary = await runWorker({
      workerId: id,
      token,
      client: nnClient(tf, data.spec, mine, nnDefaults(config, app, k)),
      trust,
      // Identity mode also makes secure aggregation actively secure: signed advertised keys,
      // checked against the workers pinned in the same roster.
      ...(trust === null ? {} : { secagg: { identity: trust.identity, peers: trust.roster } }),
      ...(config.paillierKeyFingerprint === '' ? {} : { pinnedKeyFingerprint: config.paillierKeyFingerprint.toLowerCase() }),
      transport: attested?.transport ?? createRpcTransport({ address, maxMessageBytes: config.maxMessageBytes, ...tls }),
      ...(attested === null ? {} : { attestedKey: attested.attestedKey }),
      ...(opts['authority'] === undefined ? {} : { authorityTransport: createRpcTransport({ address: opts['authority'] as string, maxMessageBytes: config.maxMessageBytes, ...tls }) }),
      ...minKeyBits,
      ...threshold,
      onEvent: (e) => basePrint(`${label}${describeWorkerEvent(id, e)}`, { worker: id, ...e, ...(attested === null ? {} : { isolation: attested.isolation }) }),
    });
    process.stdout.write(`${JSON.stringify({ worker: id, rounds: summary.rounds, reason: summary.reason, hasModel: summary.model !== null, ...(attested === null ? {} : { isolation: attested.isolation }) })}\n`);
  });

  fl.command('export-onnx')
    .description("write the final global model of a run folder as ONNX (opset 13, input \"input\" [batch, 1, 28, 28] scaled to [0, 1], output the logits)")
    .requiredOption('--checkpoint <run-dir>', 'the run folder (checkpoint.json, app.json)')
    .requiredOption('--out <file>', 'the .onnx file to write')
    .option('--model <name>', 'the architecture, when the run folder has no app.json')
    .option('--overwrite', 'replace an existing --out file')
    .option('--json', 'print one JSON line')
    .action(async (o: { checkpoint: string; out: string; model?: string; overwrite?: boolean; json?: boolean }) => {
      const { spec, tensors, round } = await readRunModel(o.checkpoint, o.model);
      const bytes = exportOnnx(spec, new Map(tensors.map((t) => [t.name, t])));
      await mkdir(dirname(resolve(o.out)), { recursive: true });
      await writeFileSafely(o.out, bytes, { overwrite: o.overwrite === true });
      const line = { onnx: o.out, model: spec.name, round, parameters: tensors.reduce((s, t) => s + t.values.length, 0), bytes: bytes.length, opset: 13 };
      process.stdout.write(o.json === true ? `${JSON.stringify(line)}\n` : `wrote ${o.out}: ${spec.name} after round ${round}, ${line.parameters} parameters, ${bytes.length} bytes (ONNX opset 13)\n`);
    });
}

/**
 * `cipherml simulate --config FILE` when FILE has an `[app]` table: the federated image run in
 * one process.
 */
export async function simulateNnCommand(opts: Record<string, unknown>): Promise<void> {
  const { config, app } = await configs(opts, opts['authorityAddress'] === undefined && process.env['CIPHERML_AUTHORITY_ADDRESS'] === undefined ? { authorityAddress: 'in-process:1' } : {}, assertSimulable);
  const print = printer(opts['json'] as boolean | undefined);
  const { server } = await simulateNn(config, app, { onLine: (l) => print(l, { event: 'data', line: l }), onServerEvent: (e) => print(describeServerEvent(e), { event: e.type, ...(e.type === 'finished' ? {} : e) }) });
  await writeAppJson(config.runDir, app);
  process.stdout.write(`${JSON.stringify(nnSummary(server, app))}\n`);
}
