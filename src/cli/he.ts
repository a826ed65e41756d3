import { assertIntegerInRange } from '../core/guards.ts';
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { runHeDemo } from '../inference/demo.ts';
import type { ActivationFitKind, FitDomain, Packing } from '../inference/calibrate.ts';
import { heDecrypt, heEncrypt, heInference, heKeygen, heKeyParams } from '../inference/he.ts';
import { THREAD_HEAP_MIB } from '../inference/pool.ts';
import { CipherMLError } from '../core/errors.ts';
import { createProgress } from '../core/progress.ts';
import { addAliases, intOption } from './options.ts';

/** Parses a number option, naming it in the error. */
function floatOption(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got "${v}"`);
    return n;
  };
}

const FITS: readonly ActivationFitKind[] = ['weighted', 'minimax'];
const DOMAINS: readonly FitDomain[] = ['min-max', 'symmetric', 'mean-std'];

/** What an activation option sets. */
interface ActivationChoice {
  readonly degree?: number;
  readonly fit?: ActivationFitKind;
  readonly zeroOffset?: boolean;
}

/**
 * HE-MAN's --relu-mode (case-insensitive, as HE-MAN reads it): `degN` fixes the degree,
 * `degN_no_offset` also drops the constant (p(0) = 0); this project's `weighted` / `minimax` pick
 * the fit with the degree chosen per layer.
 */
export function parseReluMode(mode: string): ActivationChoice {
  const v = mode.trim().toLowerCase();
  if ((FITS as readonly string[]).includes(v)) return { fit: v as ActivationFitKind };
  const m = /^deg([1-9][0-9]*)(_no_offset)?$/.exec(v);
  if (m === null || Number(m[1]) > 16) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--relu-mode "${mode}" is not degN or degN_no_offset with N in 1…16 (e.g. deg4), weighted or minimax`, { param: '--relu-mode' });
  }
  return { degree: Number(m[1]), ...(m[2] === undefined ? {} : { zeroOffset: true }) };
}

/** The activation flags of `he keyparams` as typed (project flags and HE-MAN aliases). */
export interface ActivationFlags {
  readonly degree?: number | readonly number[];
  readonly reluMode?: string;
  readonly activationFit?: string;
  readonly fitDomain?: string;
  readonly domainMode?: string;
}

/**
 * Resolves the activation flags into calibration options; bad values and an alias disagreeing
 * with its project flag are CIPHERML_E_INVALID_ARGUMENT naming the flag.
 *
 * @example
 * ```ts
 * activationOptions({ reluMode: 'deg4', domainMode: 'mean-std' }); // { degree: 4, domain: 'mean-std' }
 * ```
 */
export function activationOptions(o: ActivationFlags): { degree?: number | readonly number[]; fit?: ActivationFitKind; zeroOffset?: boolean; domain?: FitDomain } {
  const relu = o.reluMode === undefined ? {} : parseReluMode(o.reluMode);
  if (o.degree !== undefined && relu.degree !== undefined) either('--degree', String(o.degree), '--relu-mode', String(relu.degree));
  const degree = o.degree ?? relu.degree;
  const fit = either('--activation-fit', choice('--activation-fit', FITS, o.activationFit), '--relu-mode', relu.fit);
  const domain = either('--fit-domain', choice('--fit-domain', DOMAINS, o.fitDomain), '--domain-mode', choice('--domain-mode', DOMAINS, o.domainMode));
  return { ...(degree === undefined ? {} : { degree }), ...(fit === undefined ? {} : { fit }), ...(relu.zeroOffset === true ? { zeroOffset: true } : {}), ...(domain === undefined ? {} : { domain }) };
}

/** --degree: one integer, or a comma-separated list of them. */
function degreeOption(v: string): number | number[] {
  const parts = v.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^[0-9]+$/.test(p))) throw new InvalidArgumentError(`--degree must be an integer or a comma-separated list of integers (e.g. 4 or 4,4,4,2), got "${v}"`);
  const ds = parts.map(Number);
  return ds.length === 1 ? ds[0]! : ds;
}

/** A choice among `allowed`, or a typed error naming the flag. */
function choice<T extends string>(flag: string, allowed: readonly T[], v: string | undefined): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${flag} "${v}" is not one of ${allowed.join(', ')}`, { param: flag });
  return v as T;
}

/** One value from a project flag and its HE-MAN alias; both given and different is an error. */
function either<T>(flag: string, a: T | undefined, alias: string, b: T | undefined): T | undefined {
  if (a !== undefined && b !== undefined && a !== b) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${flag} ${String(a)} and its HE-MAN alias ${alias} ${String(b)} disagree: give one`, { param: flag });
  return a ?? b;
}

function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

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
      .addOption(opt('--degree <n[,n…]>', 'one fixed degree for every Relu/Sigmoid/Tanh/Gelu polynomial, or one per activation in graph order (e.g. 4,4,4,2; default: per layer, from --activation-error)', 'CIPHERML_HE_DEGREE').argParser(degreeOption))
      .addOption(opt('--activation-fit <fit>', 'weighted (default: least squares weighted by the calibrated inputs, degree from their mean error) or minimax (best uniform fit on the range, degree from its max error)', 'CIPHERML_HE_ACTIVATION_FIT'))
      .addOption(opt('--relu-mode <mode>', 'HE-MAN alias: degN (fixed degree N, e.g. deg4), degN_no_offset (and p(0) = 0), or weighted / minimax (= --activation-fit)', 'CIPHERML_HE_RELU_MODE'))
      .addOption(opt('--activation-error <e>', 'target error per activation as a fraction of its output span on the layer range: mean |p − f| over the calibration values (weighted) or max over the range (minimax); default 0.02', 'CIPHERML_HE_ACTIVATION_ERROR').argParser(floatOption('--activation-error')))
      .addOption(opt('--max-degree <n>', 'largest per-layer degree (default 8: 3 levels per activation; the choice takes degrees 1, 2, 4, 8, …)', 'CIPHERML_HE_MAX_DEGREE').argParser(intOption('--max-degree')))
      .addOption(opt('--margin <m>', 'widen each observed activation range by this fraction of its half-width on both sides (default 0.1)', 'CIPHERML_HE_MARGIN').argParser(floatOption('--margin')))
      .addOption(opt('--fit-domain <mode>', 'fitting interval from the calibrated inputs: min-max (default, their range), symmetric ([−R, R]) or mean-std (μ ± 3σ); widened by --margin', 'CIPHERML_HE_FIT_DOMAIN'))
      .addOption(opt('--domain-mode <mode>', 'HE-MAN alias of --fit-domain', 'CIPHERML_HE_DOMAIN_MODE'))
      .addOption(opt('--max-key-mb <n>', 'budget for key.pub in MiB (default 256): over it, power-of-two rotation keys, then the batch plan only', 'CIPHERML_HE_MAX_KEY_MB').argParser(floatOption('--max-key-mb')))
      .addOption(opt('--scale-bits <n>', 'log2 of the CKKS scale (default: the largest of 30…20 that fits the smallest ring and the calibrated range)', 'CIPHERML_HE_SCALE_BITS').argParser(intOption('--scale-bits')))
      .addOption(opt('--packing <plan>', 'plans the keys support: auto (both; encrypt picks), batch (one sample per slot, no rotation keys) or single (one input per ciphertext)', 'CIPHERML_HE_PACKING').choices(['auto', 'batch', 'single']).default('auto')),
  ).action(async (o: { model: string; calibration: string; out: string; degree?: number | number[]; reluMode?: string; activationFit?: string; activationError?: number; maxDegree?: number; margin?: number; fitDomain?: string; domainMode?: string; maxKeyMb?: number; scaleBits?: number; packing: Packing; overwrite?: boolean; json?: boolean }) => {
    const fitting = activationOptions(o);
    const r = await heKeyParams({
      model: o.model,
      calibration: o.calibration,
      out: o.out,
      overwrite: o.overwrite === true,
      packing: o.packing,
      ...fitting,
      ...(o.activationError === undefined ? {} : { activationError: o.activationError }),
      ...(o.maxDegree === undefined ? {} : { maxDegree: o.maxDegree }),
      ...(o.margin === undefined ? {} : { margin: o.margin }),
      ...(o.scaleBits === undefined ? {} : { scaleBits: o.scaleBits }),
      ...(o.maxKeyMb === undefined ? {} : { maxKeyBytes: Math.round(o.maxKeyMb * 2 ** 20) }),
      onProgress: (d, n) => {
        // About 20 updates per run, whatever the sample count.
        if (d === n || d % Math.ceil(n / 20) === 0) process.stderr.write(`\rcalibration ${d}/${n}        ${d === n ? '\n' : ''}`);
      },
    });
    const kp = r.keyParams;
    const p = kp.params;
    const plans = Object.entries(kp.plans).map(([k, v]) => `${k} (depth ${v.depth}, ${v.rotations} rotations)`).join(', ');
    const fits = kp.activations.map((a) => {
      const chosen = a.fit === 'minimax' ? a.maxError : a.meanError;
      const miss = chosen > a.targetError ? ` (target ${a.targetError.toExponential(2)} not met at the largest degree)` : '';
      return `  ${a.node} (${a.op}): degree ${a.degree} (+${a.depth} level${a.depth === 1 ? '' : 's'}) on [${a.range.map((v) => v.toPrecision(4)).join(', ')}], max |p − f| ${a.maxError.toExponential(2)} on the range, mean ${a.meanError.toExponential(2)} over the calibration values${miss}`;
    });
    const lines = [
      `plans: ${plans}; N = ${p.polyModulusDegree}, moduli [${p.coeffModulusBits.join(', ')}], scale 2^${p.scaleBits}; ${kp.samples} calibration samples, |x| ≤ ${kp.maxAbs.toPrecision(4)} (last prime holds ${kp.range.integerBits} integer bits, ${kp.range.headroomBits} of headroom)`,
      ...(fits.length === 0 ? [] : [`${fits.length} activation(s) replaced by ${kp.activations[0]!.fit} polynomial fits:`, ...fits]),
      `keys (expected before keygen): key.pub ≈ ${formatBytes(kp.keys.publicKeyBytes)} (${kp.galoisSteps.length} ${kp.keys.rotationKeys} Galois keys), keygen peak ≈ ${formatBytes(kp.keys.keygenPeakBytes)}, loaded for inference ≈ ${formatBytes(kp.keys.loadedBytes)}`,
      ...(kp.keys.note === undefined ? [] : [`note: ${kp.keys.note}`]),
      ...(kp.plans.single?.diagonalBytes === undefined ? [] : [`single plan (expected): encoded diagonals held by the server ≈ ${formatBytes(kp.plans.single.diagonalBytes)} beside the loaded keys (${kp.plans.single.plainProducts} diagonals)`]),
      `→ ${o.out}, ${r.calibratedModel}`,
    ];
    print(o.json, { out: o.out, calibratedModel: r.calibratedModel, ...kp }, lines.join('\n'));
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
      .addOption(new Option('-t, --threads <n|auto>', 'worker threads for a batch-packed input (auto: one per core when the model is big enough)').env('CIPHERML_HE_THREADS').default('auto'))
      .addOption(new Option('--heap-mib <n>', `MiB of ciphertexts each worker thread keeps in SEAL's heap (${THREAD_HEAP_MIB.min}-${THREAD_HEAP_MIB.max}, default ${THREAD_HEAP_MIB.default}); beyond it values wait serialized in a temporary folder`).env('CIPHERML_HE_HEAP_MIB')),
  ).action(async (o: { model: string; key: string; in: string; out: string; threads: string; heapMib?: string; overwrite?: boolean; json?: boolean }) => {
    const t0 = performance.now();
    const threads = o.threads === 'auto' ? 'auto' : Number(o.threads);
    const heapMiB = o.heapMib === undefined ? undefined : Number(o.heapMib);
    if (heapMiB !== undefined) assertIntegerInRange(heapMiB, '--heap-mib', THREAD_HEAP_MIB.min, THREAD_HEAP_MIB.max);
    const heap = heapMiB === undefined ? {} : { heapMiB };
    const progress = await createProgress({ label: 'encrypted inference', total: 0, unit: 'steps', json: o.json === true });
    const r = await heInference({ model: o.model, key: o.key, input: o.in, out: o.out, overwrite: o.overwrite === true, threads, ...heap, onProgress: (d, n, op) => progress.update(d, op, n) });
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
    const w = t.rangeWarning;
    if (w !== undefined) {
      process.stderr.write(`warning: ${w.count} decrypted value(s) lie far outside the calibrated output range [${w.calibrated.map((v) => v.toPrecision(4)).join(', ')}] (allowed [${w.allowed.map((v) => v.toPrecision(4)).join(', ')}]; worst ${w.worst.value.toPrecision(4)} at index ${w.worst.index}): the input is outside what keyparams was calibrated on, or the result wrapped around; do not trust these values\n`);
    }
    print(o.json, { out: o.out, dims: t.dims, values: Array.from(t.data), ...(w === undefined ? {} : { rangeWarning: w }) }, `decrypted [${t.dims.join(', ')}] → ${o.out}`);
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
