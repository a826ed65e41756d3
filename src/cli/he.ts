import { Option } from 'commander';
import type { Command } from 'commander';
import { runHeDemo } from '../inference/demo.ts';
import type { Packing } from '../inference/calibrate.ts';
import { heDecrypt, heEncrypt, heInference, heKeygen, heKeyParams } from '../inference/he.ts';
import { createProgress } from '../core/progress.ts';
import { addAliases, intOption } from './options.ts';

/**
 * `cipherml he …`: HE-MAN's five steps with its short flags (-m model, -c calibration, -o output,
 * -i input, -k key). Every option can also come from an environment variable (CIPHERML_HE_*),
 * as HE-MAN allows; a flag wins over the variable.
 */

const opt = (flags: string, text: string, env: string): Option => new Option(flags, text).env(env);
const req = (flags: string, text: string, env: string): Option => opt(flags, text, env).makeOptionMandatory();

function print(json: boolean | undefined, obj: Record<string, unknown>, text: string): void {
  process.stdout.write(json === true ? `${JSON.stringify(obj)}\n` : `${text}\n`);
}

/** HE-MAN's long flags (and, upper-cased, its environment variables) per verb → the option they set. */
export const HE_MAN_ALIASES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  keyparams: { '--onnx-path': 'model', '--calibration-data-path': 'calibration', '--key-params-path': 'out' },
  keygen: { '--key-params-path': 'in', '--secret-key-path': 'out' },
  encrypt: { '--key-path': 'key', '--plaintext-input-path': 'in', '--ciphertext-output-path': 'out' },
  inference: { '--onnx-path': 'model', '--key-path': 'key', '--ciphertext-input-path': 'in', '--ciphertext-output-path': 'out' },
  decrypt: { '--key-path': 'key', '--ciphertext-input-path': 'in', '--plaintext-output-path': 'out' },
};

/** Registers `cipherml he`. */
export function registerHeCommands(program: Command): void {
  const he = program.command('he').description('encrypted ONNX inference with CKKS (HE-MAN workflow: keyparams, keygen, encrypt, inference, decrypt)');
  const common = (c: Command): Command => c.addOption(opt('--overwrite', 'replace existing output files', 'CIPHERML_HE_OVERWRITE')).addOption(opt('--json', 'print JSON', 'CIPHERML_HE_JSON'));

  common(
    he
      .command('keyparams')
      .description('calibrate the model on plaintext inputs, fit polynomial activations, choose CKKS parameters; writes keyparams and <model>_calibrated.onnx')
      .addOption(req('-m, --model <path>', 'ONNX model', 'CIPHERML_HE_MODEL'))
      .addOption(req('-c, --calibration <path>', 'calibration inputs (.npz/.zip of .npy, or .npy)', 'CIPHERML_HE_CALIBRATION'))
      .addOption(req('-o, --out <path>', 'keyparams JSON to write', 'CIPHERML_HE_OUT'))
      .addOption(opt('--degree <n>', 'degree of the Relu/Sigmoid polynomials (default 2)', 'CIPHERML_HE_DEGREE').argParser(intOption('--degree')))
      .addOption(opt('--scale-bits <n>', 'log2 of the CKKS scale (default: the largest of 30…26 that fits the smallest ring)', 'CIPHERML_HE_SCALE_BITS').argParser(intOption('--scale-bits')))
      .addOption(opt('--packing <plan>', 'plans the keys support: auto (both; encrypt picks), batch (one sample per slot, no rotation keys) or single (one input per ciphertext)', 'CIPHERML_HE_PACKING').choices(['auto', 'batch', 'single']).default('auto')),
  ).action(async (o: { model: string; calibration: string; out: string; degree?: number; scaleBits?: number; packing: Packing; overwrite?: boolean; json?: boolean }) => {
    const r = await heKeyParams({ model: o.model, calibration: o.calibration, out: o.out, overwrite: o.overwrite === true, packing: o.packing, ...(o.degree === undefined ? {} : { degree: o.degree }), ...(o.scaleBits === undefined ? {} : { scaleBits: o.scaleBits }) });
    const p = r.keyParams.params;
    const plans = Object.entries(r.keyParams.plans).map(([k, v]) => `${k} (depth ${v.depth}, ${v.rotations} rotations)`).join(', ');
    print(o.json, { out: o.out, calibratedModel: r.calibratedModel, ...r.keyParams }, `plans: ${plans}; N = ${p.polyModulusDegree}, moduli [${p.coeffModulusBits.join(', ')}], scale 2^${p.scaleBits}; ${r.keyParams.activations.length} activation(s) replaced → ${o.out}, ${r.calibratedModel}`);
  });

  common(
    he
      .command('keygen')
      .description('generate keys for keyparams: <out> (secret, 0600) and <out>.pub (evaluation keys)')
      .addOption(req('-i, --in <path>', 'keyparams JSON', 'CIPHERML_HE_KEYPARAMS'))
      .addOption(req('-o, --out <path>', 'secret key path; <path>.pub gets the public keys', 'CIPHERML_HE_KEY')),
  ).action(async (o: { in: string; out: string; overwrite?: boolean; json?: boolean }) => {
    const r = await heKeygen({ keyParams: o.in, out: o.out, overwrite: o.overwrite === true });
    print(o.json, r, `wrote ${r.secretKeyPath} (secret, 0600) and ${r.publicKeyPath}; fingerprint ${r.fingerprint}`);
  });

  common(
    he
      .command('encrypt')
      .description('encrypt an input .npy (a leading batch axis is encrypted as a batch, one sample per slot)')
      .addOption(req('-k, --key <path>', 'secret key file', 'CIPHERML_HE_KEY'))
      .addOption(req('-i, --in <path>', 'input .npy', 'CIPHERML_HE_INPUT'))
      .addOption(req('-o, --out <path>', 'encrypted output', 'CIPHERML_HE_OUT'))
      .addOption(opt('--packing <plan>', 'auto (the key set\'s cost model: single for few samples), batch or single', 'CIPHERML_HE_PACKING').choices(['auto', 'batch', 'single']).default('auto'))
      .addOption(new Option('-t, --threads <n|auto>', 'worker threads (auto: one per core for 64 ciphertexts or more)').env('CIPHERML_HE_THREADS').default('auto')),
  ).action(async (o: { key: string; in: string; out: string; packing: Packing; threads: string; overwrite?: boolean; json?: boolean }) => {
    const r = await heEncrypt({ key: o.key, input: o.in, out: o.out, overwrite: o.overwrite === true, packing: o.packing, threads: o.threads === 'auto' ? 'auto' : Number(o.threads) });
    print(o.json, { out: o.out, ...r }, `encrypted ${r.batch} sample(s) of [${r.dims.join(', ')}] with the ${r.packing} packing (${r.bytes} bytes) → ${o.out}`);
  });

  common(
    he
      .command('inference')
      .description('run the calibrated model on encrypted input (needs only <key>.pub)')
      .addOption(req('-m, --model <path>', 'calibrated ONNX model', 'CIPHERML_HE_MODEL'))
      .addOption(req('-k, --key <path>', 'public evaluation keys (key.pub)', 'CIPHERML_HE_PUBLIC_KEY'))
      .addOption(req('-i, --in <path>', 'encrypted input', 'CIPHERML_HE_INPUT'))
      .addOption(req('-o, --out <path>', 'encrypted output', 'CIPHERML_HE_OUT'))
      .addOption(new Option('-t, --threads <n|auto>', 'worker threads for a batch-packed input (auto: one per core when the model is big enough)').env('CIPHERML_HE_THREADS').default('auto')),
  ).action(async (o: { model: string; key: string; in: string; out: string; threads: string; overwrite?: boolean; json?: boolean }) => {
    const t0 = performance.now();
    const threads = o.threads === 'auto' ? 'auto' : Number(o.threads);
    const progress = await createProgress({ label: 'encrypted inference', total: 0, unit: 'steps', json: o.json === true });
    const r = await heInference({ model: o.model, key: o.key, input: o.in, out: o.out, overwrite: o.overwrite === true, threads, onProgress: (d, n, op) => progress.update(d, op, n) });
    progress.finish();
    const ms = Math.round(performance.now() - t0);
    print(o.json, { out: o.out, ...r, ms }, `encrypted inference (${r.packing} packing, ${r.threads} thread${r.threads === 1 ? '' : 's'}) in ${ms} ms (${r.bytes} bytes) → ${o.out}`);
  });

  common(
    he
      .command('decrypt')
      .description('decrypt an encrypted output to .npy')
      .addOption(req('-k, --key <path>', 'secret key file', 'CIPHERML_HE_KEY'))
      .addOption(req('-i, --in <path>', 'encrypted output', 'CIPHERML_HE_INPUT'))
      .addOption(req('-o, --out <path>', 'output .npy', 'CIPHERML_HE_OUT')),
  ).action(async (o: { key: string; in: string; out: string; overwrite?: boolean; json?: boolean }) => {
    const t = await heDecrypt({ key: o.key, input: o.in, out: o.out, overwrite: o.overwrite === true });
    print(o.json, { out: o.out, dims: t.dims, values: Array.from(t.data) }, `decrypted [${t.dims.join(', ')}] → ${o.out}`);
  });

  he.command('demo')
    .description('the whole flow on the bundled MNIST model and a bundled test digit; prints decrypted scores next to plaintext ones')
    .addOption(opt('--digit <index>', 'index of the MNIST test digit (0-9999)', 'CIPHERML_HE_DIGIT').argParser(intOption('--digit')).default(0))
    .addOption(opt('--json', 'print JSON', 'CIPHERML_HE_JSON'))
    .action(async (o: { digit: number; json?: boolean }) => {
      const r = await runHeDemo({ digit: o.digit, onProgress: (l) => process.stderr.write(`${l}\n`) });
      const rows = r.decryptedScores.map((d, k) => `  ${k}   ${r.plaintextScores[k]!.toFixed(5).padStart(11)}   ${d.toFixed(5).padStart(11)}`);
      print(o.json, { ...r }, [`digit #${r.digit} (label ${r.label})`, '  class   plaintext   decrypted', ...rows, `predicted ${r.decryptedClass} encrypted, ${r.plaintextClass} in plaintext; max |difference| ${r.maxAbsError.toExponential(2)}; ${r.packing} plan, inference ${(r.ms.inference / 1000).toFixed(2)} s`].join('\n'));
    });
  for (const verb of he.commands) {
    const aliases = HE_MAN_ALIASES[verb.name()];
    if (aliases !== undefined) addAliases(verb, aliases);
  }
}
