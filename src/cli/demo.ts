import type { Command } from 'commander';
import { runPaillierCentroidDemo, type CentroidDemoResult } from '../demos/paillier-centroids.ts';
import { runHomoLrDemo } from '../demos/homo-lr.ts';
import { runServiceDemo } from '../demos/service.ts';
import { registerFlMnistDemo } from './demo-fl-mnist.ts';
import { registerFlToHeDemo } from './demo-fl-to-he.ts';
import { CipherMLError } from '../core/errors.ts';
import { intOption } from './options.ts';

function human(r: CentroidDemoResult): string {
  const lines = [
    '',
    `Paillier ${r.keyBits}-bit key (${r.backend} backend), packing ${r.packing.slotsPerCiphertext} values per ciphertext (${r.packing.slotBits}-bit slots)`,
    ...r.parties.map((p) => `  ${p.name}: ${p.rows} patients → ${p.values} values → ${p.ciphertexts} ciphertexts (${p.bytes} bytes) in ${p.encryptMs.toFixed(0)} ms`),
    `  aggregator: added the encrypted vectors in ${r.aggregateMs.toFixed(1)} ms (never saw a plaintext)`,
    `  key holder: decrypted only the sum in ${r.decryptMs.toFixed(1)} ms; max |decrypted − plaintext sum| = ${r.maxAbsError.toExponential(2)}`,
    ...r.sample.map((x) => `    ${x.name}: decrypted ${x.decrypted.toFixed(5)}, plaintext ${x.plaintext.toFixed(5)}`),
    `  nearest-centroid classifier on ${r.testRows} held-out patients: accuracy ${r.accuracyEncrypted.toFixed(4)} (same model on pooled plaintext: ${r.accuracyPlaintext.toFixed(4)})`,
  ];
  return lines.join('\n');
}

/** `cipherml demo …` */
export function registerDemoCommands(program: Command): void {
  const demo = program.command('demo').description('run a bundled end-to-end demo');
  registerFlMnistDemo(demo);
  registerFlToHeDemo(demo);
  demo
    .command('paillier')
    .description('two hospitals aggregate per-class statistics of the breast cancer data under Paillier; only the sum is decrypted')
    .option('--key-bits <bits>', 'Paillier modulus size (2048, 3072, 4096)', intOption('--key-bits'), 2048)
    .option('--data <dir>', 'folder with breast_homo_{guest,host,test}.csv (default: bundled)')
    .option('--json', 'print one JSON object instead of text')
    .action(async (opts: { keyBits: number; data?: string; json?: boolean }) => {
      const r = await runPaillierCentroidDemo({
        keyBits: opts.keyBits,
        ...(opts.data === undefined ? {} : { dataDir: opts.data }),
        onProgress: (e) => process.stderr.write(`[${e.step}] ${e.party}: ${e.detail}\n`),
      });
      process.stdout.write(opts.json === true ? `${JSON.stringify(r)}\n` : `${human(r)}\n`);
    });
  demo
    .command('service')
    .description('encrypted training service on the breast cancer data: an embedded service (SQLite), a model owner, and a user gateway that encrypts, has the service train logistic regression on ciphertexts, decrypts and predicts')
    .option('--dir <dir>', 'keep the service data and gateway keys here (default: a temporary folder, removed afterwards)')
    .option('--json', 'progress on stderr; one JSON summary on stdout')
    .action(async (o: { dir?: string; json?: boolean }) => {
      const r = await runServiceDemo({ ...(o.dir === undefined ? {} : { dir: o.dir }), onLine: (l) => process.stderr.write(`${l}\n`) });
      if (o.json === true) process.stdout.write(`${JSON.stringify(r)}\n`);
      else {
        process.stdout.write(
          `\nLogistic regression trained by the service on CKKS ciphertexts (${r.rows} rows × ${r.features} features, ${r.figures.epochs} epochs, ${r.figures.refreshes} gateway refreshes, ${(r.figures.totalMs / 1000).toFixed(1)} s)\n` +
            `  test accuracy ${r.accuracy.toFixed(4)} on ${r.testRows} held-out rows (same training in plaintext: ${r.plaintextAccuracy.toFixed(4)})\n` +
            `  max |w_encrypted − w_plaintext| = ${r.maxWeightError.toExponential(2)}; the secret key stayed with the gateway\n`,
        );
      }
    });
  demo
    .command('homo-lr', { isDefault: true })
    .description('federated logistic regression on the breast cancer data: a server, two workers (and a key authority) as separate processes over gRPC on localhost')
    .option('--strategy <name>', 'plain | paillier | secagg | enclave (Paillier, key in the attested aggregator; simulation mode here)', 'paillier')
    .option('--key-holder <who>', 'server | authority | clients | threshold', 'server')
    .option('--threshold <k-of-L>', 'with --key-holder threshold: any k of L key-holder processes decrypt', '2-of-3')
    .option('--secure-aggregation <mode>', 'with --strategy secagg: pw | stable-pw | secagg+', 'pw')
    .option('--workers <n>', 'worker processes (the two hospital files are split into shards)', intOption('--workers'), 2)
    .option('--drop <n>', 'workers that drop out in round 2 (secagg: after sharing keys)', intOption('--drop'), 0)
    .option('--rounds <n>', 'server rounds', intOption('--rounds'), 30)
    .option('--key-bits <bits>', 'Paillier modulus size', intOption('--key-bits'), 2048)
    .option('--run-dir <dir>', 'run folder (default: runs/homo-lr-<strategy>-<key holder>-<time>)')
    .option('--tls', 'mutual TLS between all parties, certificates from a throwaway LOCAL TEST CA the demo makes with openssl (default with --key-holder threshold)')
    .option('--no-tls', 'plaintext HTTP/2 on loopback')
    .option('--json', 'progress on stderr; the last stdout line is one JSON summary')
    .action(async (o: { strategy: string; keyHolder: string; threshold: string; secureAggregation: string; workers: number; drop: number; rounds: number; keyBits: number; runDir?: string; tls?: boolean; json?: boolean }) => {
      if (o.strategy !== 'plain' && o.strategy !== 'paillier' && o.strategy !== 'secagg' && o.strategy !== 'enclave') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected plain, paillier, secagg or enclave, got "${o.strategy}"`, { param: '--strategy' });
      if (o.keyHolder !== 'server' && o.keyHolder !== 'authority' && o.keyHolder !== 'clients' && o.keyHolder !== 'threshold') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected server, authority, clients or threshold, got "${o.keyHolder}"`, { param: '--key-holder' });
      const mode = o.secureAggregation;
      if (mode !== 'pw' && mode !== 'stable-pw' && mode !== 'secagg+') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected pw, stable-pw or secagg+, got "${mode}"`, { param: '--secure-aggregation' });
      const { summary } = await runHomoLrDemo({
        strategy: o.strategy,
        keyHolder: o.keyHolder,
        threshold: o.threshold,
        secureAggregation: mode,
        workers: o.workers,
        drop: o.drop,
        rounds: o.rounds,
        keyBits: o.keyBits,
        ...(o.tls === undefined ? {} : { tls: o.tls }),
        ...(o.runDir === undefined ? {} : { runDir: o.runDir }),
        onLine: (l) => process.stderr.write(`${l}\n`),
      });
      if (o.json === true) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        const acc = typeof summary['accuracy'] === 'number' ? summary['accuracy'].toFixed(4) : String(summary['accuracy']);
        const loss = typeof summary['loss'] === 'number' ? summary['loss'].toFixed(4) : String(summary['loss']);
        process.stdout.write(
          `\nFederated logistic regression, ${String(summary['strategy'])} FedAvg (key holder ${String(summary['keyHolder'])}), ${String(summary['rounds'])} rounds over gRPC between ${Number(summary['workers']) + 1}+ processes` +
            `${(summary['dropped'] as string[]).length > 0 ? ` (worker ${(summary['dropped'] as string[]).join(', ')} dropped out in round 2)` : ''}\n` +
            `  test accuracy ${acc}, log loss ${loss} (evaluated on ${String(summary['evaluatedOn'])})\n` +
            `  run folder: ${String(summary['runDir'])} (history.json, history.svg, ${o.strategy === 'enclave' ? 'enclave.sealed: keys and checkpoint sealed to the measurement' : 'checkpoint.json'})\n` +
            `${typeof summary['isolation'] === 'string' ? `  ${summary['isolation']}\n` : ''}` +
            `  every party signed with its own identity, pinned in ${String(summary['roster'])}\n` +
            `  transport: ${String(summary['transport'])}\n`,
        );
      }
    });
}
