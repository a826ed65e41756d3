import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { assertOneOf } from '../core/guards.ts';
import { intOption } from './options.ts';
import { parseThresholdLabel } from '../paillier/threshold.ts';
import type * as PaillierBench from '../../bench/paillier.ts';
import type * as FlBench from '../../bench/fl.ts';
import type * as TrainBench from '../../bench/train.ts';
import type * as SecAggBench from '../../bench/secagg.ts';
import type * as HeBench from '../../bench/he.ts';
import type * as HeLenetBench from '../../bench/he-lenet.ts';
import type * as RobustnessBench from '../../bench/robustness.ts';
import type * as TrustBench from '../../bench/trust.ts';
import type * as AttestBench from '../../bench/attest.ts';
import type * as FlCnnBench from '../../bench/fl-cnn.ts';
import type * as StartupBench from '../../bench/startup.ts';
import type * as ServeBench from '../../bench/serve.ts';

/** Loads a benchmark module; bench/ and its baselines exist only in a source checkout. */
async function importBench<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_DEPENDENCY_MISSING', 'benchmarks run from a cipherml source checkout (bench/ is not part of the published package)', { param: 'bench', cause: e });
  }
}

/** `cipherml bench …` — loads bench/ lazily (its baseline is a dev dependency). */
export function registerBenchCommands(program: Command): void {
  const bench = program.command('bench').description('benchmarks against a named baseline, run in one process');
  bench
    .command('robustness')
    .description('hostile requests (decompression bombs, anonymous large bodies, deep JSON, huge declared shapes) and GET /models latency under concurrent uploads, against the naive path without the defences')
    .option('--uploads <n>', 'concurrent public-context uploaders in the load scenario', intOption('--uploads'), 20)
    .option('--concurrent <n>', 'concurrent authenticated list requests', intOption('--concurrent'), 128)
    .option('--skip-naive-load', 'skip the load scenario on the naive path (it stalls by design)')
    .option('--attacks-only', 'only the hostile requests, no load scenario')
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { uploads: number; concurrent: number; skipNaiveLoad?: boolean; attacksOnly?: boolean; json?: boolean }) => {
      const mod = await importBench<typeof RobustnessBench>(() => import('../../bench/robustness.ts'));
      if (opts.uploads < 1 || opts.uploads > 200) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--uploads must be 1–200, got ${opts.uploads}`, { param: '--uploads' });
      if (opts.concurrent < 1 || opts.concurrent > 1024) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--concurrent must be 1–1024, got ${opts.concurrent}`, { param: '--concurrent' });
      const r = await mod.runRobustnessBench({ uploads: opts.uploads, concurrent: opts.concurrent, skipNaiveLoad: opts.skipNaiveLoad === true, attacksOnly: opts.attacksOnly === true, onProgress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatRobustnessBench(r)}\n`);
    });
  bench
    .command('paillier')
    .description('cipherml Paillier vs paillier-bigint: per-ciphertext and per-value encrypt/decrypt, add, and a 10-client × 100,000-value aggregation')
    .option('--key-bits <bits>', 'modulus size', intOption('--key-bits'), 2048)
    .option('--samples <n>', 'ciphertexts timed per operation', intOption('--samples'), 40)
    .option('--values <n>', 'values per client in the aggregation scenario', intOption('--values'), 100_000)
    .option('--clients <n>', 'clients in the aggregation scenario', intOption('--clients'), 10)
    .option('--backend <name>', 'cipherml arithmetic: auto (GMP when built), gmp, bigint', 'auto')
    .option('--threshold <k-of-L>', 'threshold Paillier figures for this key (any k of L holders decrypt)', '2-of-3')
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { keyBits: number; samples: number; values: number; clients: number; backend: string; threshold: string; json?: boolean }) => {
      const threshold = parseThresholdLabel(opts.threshold, '--threshold');
      assertOneOf(opts.backend, '--backend', ['auto', 'gmp', 'bigint'] as const);
      const mod = await importBench<typeof PaillierBench>(() => import('../../bench/paillier.ts'));
      if (opts.samples < 2) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'need at least 2 samples', { param: '--samples' });
      const r = await mod.runPaillierBench({
        keyBits: opts.keyBits,
        backend: opts.backend,
        samples: opts.samples,
        scenarioValues: opts.values,
        scenarioClients: opts.clients,
        thresholdHolders: threshold.holders,
        threshold: threshold.threshold,
        onProgress: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatPaillierBench(r)}\n`);
    });
  bench
    .command('fl')
    .description('one FedAvg round over loopback gRPC, plain and Paillier (encrypt, send, sum, decrypt), against the Paillier engine alone; bytes sent per client')
    .option('--params <n>', 'model parameters per client', intOption('--params'), 100_000)
    .option('--clients <n>', 'workers in the round', intOption('--clients'), 10)
    .option('--key-bits <bits>', 'modulus size', intOption('--key-bits'), 2048)
    .option('--runs <n>', 'repetitions of each measurement (medians are reported)', intOption('--runs'), 3)
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { params: number; clients: number; keyBits: number; runs: number; json?: boolean }) => {
      const mod = await importBench<typeof FlBench>(() => import('../../bench/fl.ts'));
      if (opts.params < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'need at least 1 parameter', { param: '--params' });
      if (opts.clients < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'need at least 1 client', { param: '--clients' });
      if (opts.runs < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'need at least 1 run', { param: '--runs' });
      const r = await mod.runFlBench({
        params: opts.params,
        clients: opts.clients,
        keyBits: opts.keyBits,
        runs: opts.runs,
        onProgress: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatFlBench(r)}\n`);
    });
  bench
    .command('secagg')
    .description('one secure-aggregation round (pairwise masks, dropout recovery) against a plain FedAvg round of the same size, the actively secure round against the honest-but-curious one, in-process clients; SecAgg+ at 1,000 clients (or --plus-clients 1000,10000)')
    .option('--clients <n>', 'clients in the round', intOption('--clients'), 100)
    .option('--params <n>', 'model parameters per client', intOption('--params'), 100_000)
    .option('--dropout <fraction>', 'fraction of clients dropping after sharing keys', (v) => Number(v), 0.1)
    .option('--mode <mode>', 'pw | stable-pw | secagg+', 'pw')
    .option('--plus-clients <list>', 'clients of the extra SecAgg+ rounds, comma-separated, e.g. 1000,10000 (0: skip)', (v) => v.split(',').map((x, i) => intOption(`--plus-clients[${i}]`)(x.trim())), [1000])
    .option('--plus-params <n>', 'model parameters of the SecAgg+ rounds (default: --params)', intOption('--plus-params'))
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { clients: number; params: number; dropout: number; mode: string; plusClients: number[]; plusParams?: number; json?: boolean }) => {
      const mode = opts.mode;
      assertOneOf(mode, '--mode', ['pw', 'stable-pw', 'secagg+'] as const);
      const mod = await importBench<typeof SecAggBench>(() => import('../../bench/secagg.ts'));
      const r = await mod.runSecAggBench({
        clients: opts.clients,
        params: opts.params,
        dropout: opts.dropout,
        mode,
        plusClients: opts.plusClients,
        ...(opts.plusParams === undefined ? {} : { plusParams: opts.plusParams }),
        onProgress: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatSecAggBench(r)}\n`);
    });
  bench
    .command('trust')
    .description('the key authority\'s contribution floor (verify signed contributions, multiply, decrypt) against the development-mode authority decrypting the server\'s sum, same run; a worker\'s signature against its encryption')
    .option('--key-bits <bits>', 'modulus size', intOption('--key-bits'), 2048)
    .option('--params <n>', 'model parameters per client', intOption('--params'), 10_000)
    .option('--clients <n>', 'contributions per round', intOption('--clients'), 10)
    .option('--runs <n>', 'repetitions (medians are reported)', intOption('--runs'), 3)
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { keyBits: number; params: number; clients: number; runs: number; json?: boolean }) => {
      assertOneOf(opts.keyBits, '--key-bits', [1024, 2048, 3072, 4096] as const);
      for (const [name, v] of [['--params', opts.params], ['--clients', opts.clients], ['--runs', opts.runs]] as const) {
        if (v < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${name} must be at least 1`, { param: name });
      }
      const mod = await importBench<typeof TrustBench>(() => import('../../bench/trust.ts'));
      const r = await mod.runTrustBench({ keyBits: opts.keyBits, params: opts.params, clients: opts.clients, runs: opts.runs, onProgress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatTrustBench(r)}\n`);
    });
  bench
    .command('he')
    .description('encrypted MNIST inference, both CKKS plans (single: one image in the slots; batch: one image per slot, on worker threads) against onnxruntime-node plaintext on the same images')
    .option('--model <path>', 'ONNX model (default: examples/he/mnist_square.onnx); `lenet5`: the bundled LeNet-5 models (x² and Relu) beside the MNIST model')
    .option('--batch <n>', 'images in the batch (default: all slots; more run as several chunks)', intOption('--batch'))
    .option('--threads <n>', 'worker threads for the batch plan (default: the cores)', intOption('--threads'))
    .option('--single <n>', 'images run one by one through the single plan', intOption('--single'), 10)
    .option('--lenet-single <n>', 'with --model lenet5: images through lenet5_square\'s single plan (default 0: not run; 5–6 s an image on a quiet machine, after 15–20 s preparing its diagonals)', intOption('--lenet-single'), 0)
    .option('--relu-encrypted', 'with --model lenet5: run lenet5_relu\'s batch plan encrypted end to end instead of estimating it (depth 13 at N = 16384: on this 2-core machine it stops at about 46 % with CIPHERML_E_HE_HEAP_EXHAUSTED, the SEAL heap at the WebAssembly limit; docs/inference.md)')
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { model?: string; batch?: number; threads?: number; single: number; lenetSingle: number; reluEncrypted?: boolean; json?: boolean }) => {
      if (opts.model === 'lenet5') {
        const lenet = await importBench<typeof HeLenetBench>(() => import('../../bench/he-lenet.ts'));
        const r = await lenet.runHeLenetBench({
          ...(opts.batch === undefined ? {} : { batch: opts.batch }),
          ...(opts.threads === undefined ? {} : { threads: opts.threads }),
          singleImages: opts.single,
          lenetSingleImages: opts.lenetSingle,
          reluEncrypted: opts.reluEncrypted === true,
          onProgress: (line) => process.stderr.write(`${line}\n`),
        });
        process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${lenet.formatHeLenetBench(r)}\n`);
        return;
      }
      const mod = await importBench<typeof HeBench>(() => import('../../bench/he.ts'));
      const r = await mod.runHeBench({
        ...(opts.model === undefined ? {} : { model: opts.model }),
        ...(opts.batch === undefined ? {} : { batch: opts.batch }),
        ...(opts.threads === undefined ? {} : { threads: opts.threads }),
        singleImages: opts.single,
        onProgress: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatHeBench(r)}\n`);
    });
  bench
    .command('attest')
    .description('attestation verification per document kind (SGX DCAP, TDX, SEV-SNP, Nitro; real documents, warm) against the bare body-signature check of the same document')
    .option('--iterations <n>', 'warm verifications per kind (median reported)', intOption('--iterations'), 50)
    .option('--rounds <n>', 'federated rounds of the aggregator round-overhead part (0: skip; at least 3)', intOption('--rounds'), 6)
    .option('--key-bits <bits>', 'Paillier modulus of the round-overhead part: 1024 | 2048 | 3072', intOption('--key-bits'), 2048)
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { iterations: number; rounds: number; keyBits: number; json?: boolean }) => {
      if (opts.iterations < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'need at least 1 iteration', { param: '--iterations' });
      if (opts.rounds !== 0 && !(opts.rounds >= 3 && opts.rounds <= 100)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--rounds must be 0 or 3..100, got ${opts.rounds}`, { param: '--rounds' });
      const keyBits = opts.keyBits;
      assertOneOf(keyBits, '--key-bits', [1024, 2048, 3072] as const);
      const mod = await importBench<typeof AttestBench>(() => import('../../bench/attest.ts'));
      const r = await mod.runAttestBench({ iterations: opts.iterations, rounds: opts.rounds, keyBits, onProgress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatAttestBench(r)}\n`);
    });
  bench
    .command('train')
    .description('encrypted logistic regression (CKKS, poly-3 sigmoid, gateway refreshes) against the same training in plaintext; weight error and peak memory')
    .option('--rows <n>', 'rows of the synthetic balanced set', intOption('--rows'), 984)
    .option('--features <n>', 'standardized features', intOption('--features'), 30)
    .option('--epochs <n>', 'full-batch epochs', intOption('--epochs'), 3)
    .option('--data <name>', 'synthetic | breast-cancer (examples/data)', 'synthetic')
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { rows: number; features: number; epochs: number; data: string; json?: boolean }) => {
      assertOneOf(opts.data, '--data', ['synthetic', 'breast-cancer'] as const);
      const mod = await importBench<typeof TrainBench>(() => import('../../bench/train.ts'));
      const r = await mod.runTrainBench({ rows: opts.rows, features: opts.features, epochs: opts.epochs, data: opts.data, onProgress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatTrainBench(r)}\n`);
    });
  bench
    .command('fl-cnn')
    .description('LeNet-5 training throughput on the tfjs wasm engine against the pure-JS CPU backend, and one federated LeNet-5 round per strategy against plain FedAvg, each party charged only its own work')
    .option('--images <n>', 'images trained on the wasm backend', intOption('--images'), 1024)
    .option('--cpu-images <n>', 'images trained on the CPU baseline', intOption('--cpu-images'), 128)
    .option('--clients <n>', 'clients of the federated round', intOption('--clients'), 10)
    .option('--round-images <n>', 'images a client trains in the round, at most (0: its whole partition, one epoch)', intOption('--round-images'), 0)
    .option('--train-limit <n>', 'training images partitioned among the clients (0: all 60,000)', intOption('--train-limit'), 0)
    .option('--partition <scheme>', 'iid | shards:K | dirichlet:α', 'dirichlet:0.5')
    .option('--in-process-images <n>', 'also time whole rounds with every client in this process, n images each (0: skip)', intOption('--in-process-images'), 0)
    .option('--key-bits <bits>', 'Paillier modulus size', intOption('--key-bits'), 2048)
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { images: number; cpuImages: number; clients: number; roundImages: number; trainLimit: number; partition: string; inProcessImages: number; keyBits: number; json?: boolean }) => {
      const keyBits: number = opts.keyBits;
      assertOneOf(keyBits, '--key-bits', [1024, 2048, 3072, 4096] as const);
      for (const [k, v, min] of [['--images', opts.images, 32], ['--cpu-images', opts.cpuImages, 32], ['--clients', opts.clients, 2], ['--round-images', opts.roundImages, 0], ['--train-limit', opts.trainLimit, 0], ['--in-process-images', opts.inProcessImages, 0]] as const) {
        if (v < min) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${k} is ${v}; expected at least ${min}`, { param: k });
      }
      const mod = await importBench<typeof FlCnnBench>(() => import('../../bench/fl-cnn.ts'));
      const r = await mod.runFlCnnBench({ ...opts, keyBits, onProgress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatFlCnnBench(r)}\n`);
    });
  bench
    .command('startup')
    .description('start-up of `cipherml --help`/`--version` and of `import \'cipherml/paillier\'` (median of fresh processes) against `node -e 0`')
    .option('--runs <n>', 'processes per command', intOption('--runs'), 10)
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { runs: number; json?: boolean }) => {
      if (opts.runs < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `need at least 1 run, got ${opts.runs}`, { param: '--runs' });
      const mod = await importBench<typeof StartupBench>(() => import('../../bench/startup.ts'));
      const r = await mod.runStartupBench({ runs: opts.runs, onProgress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatStartupBench(r)}\n`);
    });
  bench
    .command('serve')
    .description('encrypted-inference jobs per minute (bundled MNIST model) with 1 and 2 `serve worker` processes against Redis, the scale-out ratio, and GET /api/v1/models at 50 concurrent clients')
    .option('--redis <url>', 'redis://… (default: $CIPHERML_TEST_REDIS_URL)')
    .option('--jobs <n>', 'inference jobs per worker count (one per user, posted at once)', intOption('--jobs'), 4)
    .option('--requests <n>', 'requests of the list scenario', intOption('--requests'), 2000)
    .option('--concurrency <n>', 'concurrent clients of the list scenario', intOption('--concurrency'), 50)
    .option('--json', 'print one JSON object instead of a table')
    .action(async (opts: { redis?: string; jobs: number; requests: number; concurrency: number; json?: boolean }) => {
      const redis = opts.redis ?? process.env['CIPHERML_TEST_REDIS_URL'];
      if (redis === undefined || redis === '') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'bench serve needs a Redis server for the job queue', { param: '--redis', advice: 'Start redis-server and pass --redis redis://127.0.0.1:6379 (or set CIPHERML_TEST_REDIS_URL).' });
      if (opts.jobs < 1 || opts.jobs > 64) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--jobs must be 1–64, got ${opts.jobs}`, { param: '--jobs' });
      if (opts.concurrency < 1 || opts.concurrency > 1024) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--concurrency must be 1–1024, got ${opts.concurrency}`, { param: '--concurrency' });
      const mod = await importBench<typeof ServeBench>(() => import('../../bench/serve.ts'));
      const r = await mod.runServeBench({ redis, jobs: opts.jobs, listRequests: opts.requests, concurrency: opts.concurrency, onProgress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${mod.formatServeBench(r)}\n`);
    });
}
