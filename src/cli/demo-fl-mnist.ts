import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { runFlMnistDemo } from '../demos/fl-mnist.ts';
import { parsePartition } from '../ml/partition.ts';
import { intOption } from './options.ts';

/** `cipherml demo fl-mnist` */
export function registerFlMnistDemo(demo: Command): void {
  demo
    .command('fl-mnist')
    .description('federated LeNet-5 on non-IID MNIST: a server and one worker process per client over gRPC on localhost, plain, Paillier or secure aggregation')
    .option('--strategy <name>', 'plain | paillier | secagg', 'plain')
    .option('--clients <n>', 'worker processes', intOption('--clients'), 10)
    .option('--partition <scheme>', 'iid | shards:K | dirichlet:α', 'dirichlet:0.5')
    .option('--dataset <name>', 'mnist | fashion-mnist', 'mnist')
    .option('--rounds <n>', 'server rounds', intOption('--rounds'), 20)
    .option('--model <name>', 'lenet5 | lenet5-he | cnn | mlp', 'lenet5')
    .option('--server-optimizer <name>', 'fedavg | fedadam | fedyogi | fedadagrad', 'fedavg')
    .option('--proximal-mu <mu>', 'FedProx μ (0: FedAvg)', '0')
    .option('--key-bits <bits>', 'Paillier modulus size', intOption('--key-bits'), 2048)
    .option('--train-limit <n>', 'use the first n training images (0: all 60,000)', intOption('--train-limit'), 0)
    .option('--test-limit <n>', 'use the first n test images (0: all 10,000)', intOption('--test-limit'), 0)
    .option('--seed <n>', 'seed of the partition, initial model and shuffling', intOption('--seed'), 42)
    .option('--run-dir <dir>', 'run folder (default: runs/fl-mnist-<strategy>-<time>)')
    .option('--json', 'progress on stderr; the last stdout line is one JSON summary')
    .action(async (o: { strategy: string; clients: number; partition: string; dataset: string; rounds: number; model: string; serverOptimizer: string; proximalMu: string; keyBits: number; trainLimit: number; testLimit: number; seed: number; runDir?: string; json?: boolean }) => {
      if (o.strategy !== 'plain' && o.strategy !== 'paillier' && o.strategy !== 'secagg') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected plain, paillier or secagg, got "${o.strategy}"`, { param: '--strategy' });
      if (o.dataset !== 'mnist' && o.dataset !== 'fashion-mnist') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected mnist or fashion-mnist, got "${o.dataset}"`, { param: '--dataset' });
      parsePartition(o.partition, '--partition');
      const started = performance.now();
      const { summary } = await runFlMnistDemo({
        strategy: o.strategy,
        clients: o.clients,
        partition: o.partition,
        dataset: o.dataset,
        rounds: o.rounds,
        model: o.model,
        serverOptimizer: o.serverOptimizer,
        proximalMu: Number(o.proximalMu),
        keyBits: o.keyBits,
        trainLimit: o.trainLimit,
        testLimit: o.testLimit,
        seed: o.seed,
        ...(o.runDir === undefined ? {} : { runDir: o.runDir }),
        onLine: (l) => process.stderr.write(`${l}\n`),
      });
      const full = { ...summary, seconds: Math.round((performance.now() - started) / 1000) };
      if (o.json === true) process.stdout.write(`${JSON.stringify(full)}\n`);
      else {
        const f = (x: unknown) => (typeof x === 'number' ? x.toFixed(4) : String(x));
        process.stdout.write(
          `\nFederated ${String(summary['model'])} on ${String(summary['dataset'])}, ${String(summary['strategy'])} aggregation, ${o.clients} clients (${o.partition}), ${String(summary['rounds'])} rounds over gRPC between ${o.clients + 1} processes\n` +
            `  test accuracy ${f(summary['accuracy'])}, loss ${f(summary['loss'])} on ${o.testLimit === 0 ? '10,000' : o.testLimit} test images\n` +
            `  run folder: ${String(summary['runDir'])} (history.json, history.svg, checkpoint.json; cipherml fl export-onnx --checkpoint ${String(summary['runDir'])} --out model.onnx)\n`,
        );
      }
    });
}
