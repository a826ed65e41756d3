import { join } from 'node:path';
import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { runFlToHeDemo } from '../demos/fl-to-he.ts';
import { parsePartition } from '../ml/partition.ts';
import { intOption } from './options.ts';

/** `cipherml demo fl-to-he` */
export function registerFlToHeDemo(demo: Command): void {
  demo
    .command('fl-to-he')
    .description('federated training of an HE-friendly CNN (worker processes over gRPC, secure aggregation), ONNX export, then he keyparams/keygen/encrypt/inference/decrypt on test digits: plaintext vs encrypted accuracy and argmax agreement')
    .option('--out <dir>', 'folder for the run, model.onnx, keys and ciphertexts (default: runs/fl-to-he-<time>)')
    .option('--strategy <name>', 'aggregation of the training: secagg | paillier | plain', 'secagg')
    .option('--clients <n>', 'worker processes', intOption('--clients'), 4)
    .option('--rounds <n>', 'federated rounds', intOption('--rounds'), 3)
    .option('--partition <scheme>', 'iid | shards:K | dirichlet:α', 'dirichlet:0.5')
    .option('--train-limit <n>', 'training images shared among the clients (0: all 60,000)', intOption('--train-limit'), 4000)
    .option('--digits <n>', 'test digits encrypted and classified (1–4096: one batch of CKKS slots)', intOption('--digits'), 1000)
    .option('--model <name>', 'the polynomial model trained and served: cnn-he (minutes on 2 cores) | lenet5-he (its encrypted batch plan takes over an hour on 2 cores)', 'cnn-he')
    .option('--seed <n>', 'seed of the partition, initial model and shuffling', intOption('--seed'), 42)
    .option('--json', 'progress on stderr; the last stdout line is one JSON summary')
    .action(async (o: { out?: string; model: string; strategy: string; clients: number; rounds: number; partition: string; trainLimit: number; digits: number; seed: number; json?: boolean }) => {
      if (o.strategy !== 'plain' && o.strategy !== 'paillier' && o.strategy !== 'secagg') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected secagg, paillier or plain, got "${o.strategy}"`, { param: '--strategy' });
      parsePartition(o.partition, '--partition');
      if (o.model !== 'cnn-he' && o.model !== 'lenet5-he') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected cnn-he or lenet5-he (a model whose every layer is a polynomial), got "${o.model}"`, { param: '--model' });
      const out = o.out ?? join(process.cwd(), 'runs', `fl-to-he-${new Date().toISOString().replace(/[:.]/g, '-')}`);
      const started = performance.now();
      const r = await runFlToHeDemo({ out, model: o.model, strategy: o.strategy, clients: o.clients, rounds: o.rounds, partition: o.partition, trainLimit: o.trainLimit, digits: o.digits, seed: o.seed, onLine: (l) => process.stderr.write(`${l}\n`) });
      const seconds = Math.round((performance.now() - started) / 1000);
      if (o.json === true) {
        const { training, ...rest } = r;
        process.stdout.write(`${JSON.stringify({ ...rest, training: { strategy: training['strategy'], rounds: training['rounds'], clients: training['clients'], partition: training['partition'], model: training['model'], accuracy: training['accuracy'], runDir: training['runDir'] }, totalSeconds: seconds })}\n`);
        return;
      }
      const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
      process.stdout.write(
        `\nFederated ${String(r.training['model'])} (${String(r.training['strategy'])} aggregation, ${o.clients} worker processes, ${o.partition}, ${String(r.training['rounds'])} rounds) → ${r.onnx}\n` +
          `CKKS N = ${r.ckks.polyModulusDegree}, moduli [${r.ckks.coeffModulusBits.join(', ')}], depth ${r.ckks.depth}, ${r.ckks.activationsReplaced} activation(s) replaced (the encrypted model is the trained one)\n` +
          `On ${r.digits} MNIST test digits:\n` +
          `  plaintext accuracy  ${pct(r.accuracy)}\n` +
          `  encrypted accuracy  ${pct(r.encryptedAccuracy)}\n` +
          `  argmax agreement    ${pct(r.argmaxAgreement)} (max |Δ logit| ${r.maxAbsError.toExponential(2)})\n` +
          `Seconds: training ${r.seconds.training}, export ${r.seconds.export}, keyparams ${r.seconds.keyparams}, keygen ${r.seconds.keygen}, encrypt ${r.seconds.encrypt}, inference ${r.seconds.inference}, decrypt ${r.seconds.decrypt} (total ${seconds})\n`,
      );
    });
}
