import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { assertOneOf } from '../core/guards.ts';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readFileTyped, refuseExisting, writeFileSafely } from '../core/io.ts';
import {
  DEFAULT_PACKING,
  PAILLIER_KEY_BITS,
  PackedCiphertext,
  decryptVector,
  deserializePacked,
  encryptVector,
  generatePaillierKeyPair,
  readPrivateKeyFile,
  readPublicKeyFile,
  serializePacked,
  writeKeyPairFiles,
  type PackingSpec,
} from '../paillier/index.ts';
import { collect, intOption } from './options.ts';
import { namingFlags } from './failure.ts';

/** Reads numbers from a JSON array file, or from text with one number per line / comma-separated. */
async function readValues(path: string): Promise<number[]> {
  const text = Buffer.from(await readFileTyped(path, '--in')).toString('utf8').trim();
  let values: unknown;
  if (text.startsWith('[')) {
    try {
      values = JSON.parse(text);
    } catch (e) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${path} is not valid JSON: ${(e as Error).message}`, { param: '--in', cause: e });
    }
  } else {
    values = text.split(/[\s,]+/).filter((t) => t !== '').map((t) => (/^[-+0-9.eE]+$/.test(t) ? Number(t) : t));
  }
  const advice = 'Write the numbers as a JSON array such as [0.5, -1.25, 3], or one number per line.';
  if (!Array.isArray(values)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${path} must hold an array of numbers`, { param: '--in', advice });
  const bad = values.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
  if (bad >= 0) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `value ${bad + 1} of ${path} is ${JSON.stringify(values[bad]) ?? String(values[bad])}, not a finite number`, { param: '--in', advice });
  return values as number[];
}

function out(json: boolean | undefined, obj: Record<string, unknown>, text: string): void {
  process.stdout.write(json === true ? `${JSON.stringify(obj)}\n` : `${text}\n`);
}

/** `cipherml paillier …` */
export function registerPaillierCommands(program: Command): void {
  const p = program.command('paillier').description('Paillier keys and packed encrypted vectors on files');

  p.command('keygen')
    .description('generate a key pair: PATH (secret, mode 0600) and PATH.pub')
    .requiredOption('-o, --out <path>', 'secret key path; the public key goes to <path>.pub')
    .option('--bits <bits>', 'modulus size (2048, 3072, 4096)', intOption('--bits'), 2048)
    .option('--overwrite', 'replace existing key files')
    .option('--json', 'print JSON')
    .action(async (o: { out: string; bits: number; overwrite?: boolean; json?: boolean }) => {
      // Check every input, then prepare the destination, before the (slow) key generation: a
      // refused command creates no folder.
      assertOneOf(o.bits, '--bits', PAILLIER_KEY_BITS);
      await refuseExisting([o.out, `${o.out}.pub`], o.overwrite === true).catch((e: unknown) => {
        throw new CipherMLError('CIPHERML_E_FILE_EXISTS', `${(e as CipherMLError).details?.['path'] as string} already exists`, { param: '--out', advice: 'Choose another --out path, or pass --overwrite to replace both key files.' });
      });
      await mkdir(dirname(o.out), { recursive: true });
      const pair = await generatePaillierKeyPair({ bits: o.bits });
      const paths = await writeKeyPairFiles(o.out, pair, { overwrite: o.overwrite === true, param: '--out', overwriteFlag: '--overwrite' });
      out(o.json, { ...paths, fingerprint: pair.publicKey.fingerprint, bits: pair.publicKey.bits }, `wrote ${paths.secretKeyPath} (secret, 0600) and ${paths.publicKeyPath}; fingerprint ${pair.publicKey.fingerprint}`);
    });

  p.command('encrypt')
    .description('encrypt a vector of numbers (JSON array or one per line), packed')
    .requiredOption('-k, --key <path>', 'public key file')
    .requiredOption('-i, --in <path>', 'input numbers')
    .requiredOption('-o, --out <path>', 'encrypted output')
    .option('--fractional-bits <n>', 'precision: bits after the binary point', intOption('--fractional-bits'), DEFAULT_PACKING.fractionalBits)
    .option('--integer-bits <n>', 'range: |x| < 2^n', intOption('--integer-bits'), DEFAULT_PACKING.integerBits)
    .option('--max-contributions <n>', 'headroom: how many vectors may be summed', intOption('--max-contributions'), DEFAULT_PACKING.maxContributions)
    .option('--overwrite', 'replace an existing output file')
    .option('--json', 'print JSON')
    .action(async (o: { key: string; in: string; out: string; fractionalBits: number; integerBits: number; maxContributions: number; overwrite?: boolean; json?: boolean }) => {
      const pk = await readPublicKeyFile(o.key, { param: '--key' });
      const packing: PackingSpec = { fractionalBits: o.fractionalBits, integerBits: o.integerBits, maxContributions: o.maxContributions };
      const values = await readValues(o.in);
      const enc = await namingFlags({ values: '--in', vector: '--in', packing: '--fractional-bits/--integer-bits' }, () => encryptVector(pk, values, { packing }));
      const bytes = serializePacked(enc);
      await writeFileSafely(o.out, bytes, { overwrite: o.overwrite === true, param: '--out', overwriteFlag: '--overwrite' });
      out(o.json, { out: o.out, bytes: bytes.length, ...enc.header }, `encrypted ${enc.length} values into ${enc.values.length} ciphertexts (${bytes.length} bytes) → ${o.out}`);
    });

  p.command('add')
    .description('add encrypted vectors (needs only the public key)')
    .requiredOption('-k, --key <path>', 'public key file')
    .requiredOption('-i, --in <path>', 'encrypted vector (repeat for each)', collect)
    .requiredOption('-o, --out <path>', 'encrypted sum')
    .option('--overwrite', 'replace an existing output file')
    .option('--json', 'print JSON')
    .action(async (o: { key: string; in: string[]; out: string; overwrite?: boolean; json?: boolean }) => {
      const pk = await readPublicKeyFile(o.key, { param: '--key' });
      const vectors = await Promise.all(o.in.map(async (path) => namingFlags({ packed: `--in ${path}` }, async () => deserializePacked(pk, await readFileTyped(path, '--in')))));
      const sum = await namingFlags({ vectors: '--in', a: '--in', b: '--in' }, () => PackedCiphertext.sum(vectors));
      const bytes = serializePacked(sum);
      await writeFileSafely(o.out, bytes, { overwrite: o.overwrite === true, param: '--out', overwriteFlag: '--overwrite' });
      out(o.json, { out: o.out, bytes: bytes.length, ...sum.header }, `added ${vectors.length} vectors (${sum.contributions} contributions) → ${o.out}`);
    });

  p.command('decrypt')
    .description('decrypt an encrypted vector to a JSON array of sums (or means)')
    .requiredOption('-k, --key <path>', 'secret key file (mode 0600)')
    .requiredOption('-i, --in <path>', 'encrypted vector')
    .option('-o, --out <path>', 'write the JSON array here instead of stdout')
    .option('--mean', 'divide by the number of contributions')
    .option('--overwrite', 'replace an existing output file')
    .option('--json', 'print JSON')
    .action(async (o: { key: string; in: string; out?: string; mean?: boolean; overwrite?: boolean; json?: boolean }) => {
      const sk = await readPrivateKeyFile(o.key, { param: '--key' });
      const bytes = await readFileTyped(o.in, '--in');
      const packed = await namingFlags({ packed: '--in' }, () => deserializePacked(sk.publicKey, bytes));
      const values = Array.from(await namingFlags({ packed: '--in' }, () => decryptVector(sk, packed, { mean: o.mean === true })));
      if (o.out !== undefined) {
        await writeFileSafely(o.out, `${JSON.stringify(values)}\n`, { overwrite: o.overwrite === true, param: '--out', overwriteFlag: '--overwrite' });
        out(o.json, { out: o.out, length: values.length, contributions: packed.contributions }, `decrypted ${values.length} values (${packed.contributions} contributions) → ${o.out}`);
      } else {
        out(o.json, { values, contributions: packed.contributions }, JSON.stringify(values));
      }
    });
}
