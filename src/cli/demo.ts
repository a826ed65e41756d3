import type { Command } from 'commander';
import { runPaillierCentroidDemo, type CentroidDemoResult } from '../demos/paillier-centroids.ts';
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
  demo
    .command('paillier', { isDefault: true })
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
}
