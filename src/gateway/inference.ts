import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CkksContext, readSecretKeyFile, writeKeyFiles } from '../ckks/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { readFileTyped, refuseExisting, writeFileSafely } from '../core/io.ts';
import type { KeyParams } from '../inference/calibrate.ts';
import { checkOutputRange, choosePacking, decryptOutput, encryptBatch, encryptSingle } from '../inference/he.ts';
import type { RangeWarning } from '../inference/he.ts';
import { readNpy, writeNpy } from '../inference/npy.ts';
import type { Tensor } from '../inference/onnx.ts';
import { sizeOf } from '../inference/onnx.ts';
import { inferencePaths, packDeployBundle } from '../inference/service-wire.ts';
import type { InferenceLimits, PublishedModel } from '../inference/service-wire.ts';
import { ServiceClient } from './client.ts';

/** Where the inference gateway talks to. */
export interface InferenceGatewayOptions {
  readonly service: string;
  readonly token: string;
  /** `NAME/VERSION` of the model. */
  readonly model: string;
  /** PEM CA certificate(s) for an https:// service with a private CA (`--tls-ca`). */
  readonly tlsCa?: Uint8Array | undefined;
  readonly onProgress?: (line: string) => void;
}

/** What `gateway deploy` reports. */
export interface DeployReply {
  readonly modelUrl: string;
  readonly keyParamsUrl: string;
  readonly calibratedModelUrl: string;
  readonly calibratedModelSha256: string;
  readonly depth: number;
  readonly polyModulusDegree: number;
  readonly packing: string;
  readonly limits: InferenceLimits;
}

/** What `gateway infer` reports with the decrypted output. */
export interface InferReply {
  readonly output: Tensor;
  readonly jobId: string;
  /** Key set fingerprint (the keys stay in `keyDir`). */
  readonly fingerprint: string;
  readonly keysGenerated: boolean;
  readonly keysUploaded: boolean;
  readonly packing: 'batch' | 'single';
  readonly inputBytes: number;
  readonly outputBytes: number;
  /** Decrypted values far outside the calibrated output range (see he decrypt). */
  readonly rangeWarning?: RangeWarning;
  readonly ms: { readonly encrypt: number; readonly service: number; readonly decrypt: number };
}

function modelName(model: string): { name: string; version: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})$/.exec(model);
  if (m === null) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected NAME/VERSION, got ${JSON.stringify(model)}`, { param: '--model' });
  return { name: m[1]!, version: m[2]! };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * Owner: deploys `model` (deploy_model, idempotent for its owner) and uploads the ONNX model with
 * its calibration inputs; the service calibrates (he keyparams) and publishes the calibrated
 * model and keyparams at the model URL.
 *
 * @example
 * ```ts
 * await gatewayDeploy({ service, token, model: 'mnist/1', onnx: await readFile('m.onnx'), calibration: await readFile('c.npz') });
 * ```
 */
export async function gatewayDeploy(o: InferenceGatewayOptions & { readonly onnx: Uint8Array; readonly calibration: Uint8Array }): Promise<DeployReply> {
  const { name, version } = modelName(o.model);
  const p = inferencePaths(name, version);
  const client = new ServiceClient(o.service, o.token, { ca: o.tlsCa });
  await client.json('POST', p.deployModel);
  o.onProgress?.(`deployed ${o.model}; calibrating on the service (he keyparams)`);
  return (await client.upload('POST', p.deploy, packDeployBundle(o.onnx, o.calibration))) as unknown as DeployReply;
}

/** Splits an input's shape into batch size and per-sample dims against the model's input shape. */
function samplesOf(t: Tensor, inputDims: readonly (number | null)[]): { samples: Float64Array[]; dims: number[] } {
  const want = inputDims.slice(1);
  const dims = t.dims.length === inputDims.length ? t.dims.slice(1) : t.dims.length === want.length ? [...t.dims] : undefined;
  if (dims === undefined || want.some((d, i) => d !== null && d !== dims[i])) {
    throw new CipherMLError('CIPHERML_E_INFERENCE_INPUT_SHAPE', `input of shape [${t.dims.join(', ')}]; the model takes [${inputDims.map((d) => d ?? 'N').join(', ')}] (or one sample of [${want.map((d) => d ?? '?').join(', ')}])`, { param: '-i', details: { expected: inputDims, actual: t.dims } });
  }
  const batch = t.dims.length === inputDims.length ? t.dims[0]! : 1;
  const per = sizeOf(dims);
  return { samples: Array.from({ length: batch }, (_, s) => t.data.subarray(s * per, (s + 1) * per)), dims };
}

function sameParams(ctx: CkksContext, kp: KeyParams): boolean {
  const a = ctx.params;
  const b = kp.params;
  return a.polyModulusDegree === b.polyModulusDegree && a.scaleBits === b.scaleBits && a.coeffModulusBits.length === b.coeffModulusBits.length && a.coeffModulusBits.every((x, i) => x === b.coeffModulusBits[i]);
}

/**
 * User: the HE4Cloud inference flow from the trusted side. Registers, makes the key set for the
 * model's published keyparams (or reuses the one in `keyDir`, 0600), uploads the evaluation keys
 * once (again only when they differ from what the service holds), encrypts `input`, posts it,
 * waits for the job, downloads and decrypts the output. The secret key never leaves `keyDir`.
 *
 * @example
 * ```ts
 * const { output } = await gatewayInfer({ service, token, model: 'mnist/1', keyDir: 'keys', input: { dims: [1, 1, 28, 28], data } });
 * ```
 */
export async function gatewayInfer(o: InferenceGatewayOptions & { readonly keyDir: string; readonly input: Tensor; readonly pollMs?: number; readonly timeoutMs?: number }): Promise<InferReply> {
  const { name, version } = modelName(o.model);
  const p = inferencePaths(name, version);
  const log = o.onProgress ?? ((): void => undefined);
  const client = new ServiceClient(o.service, o.token, { ca: o.tlsCa });
  const published = await client.json<PublishedModel>('GET', p.model);
  if (published.inference === null) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `${o.model} is not deployed for inference`, { param: '--model', advice: 'The model owner runs `cipherml gateway deploy --onnx … --calibration …` first.' });
  await client.json('POST', p.register);
  const kp = await client.json<KeyParams>('GET', p.keyParams);

  const keyPath = join(o.keyDir, `${name}@${version}`, 'he-key');
  let keysGenerated = false;
  let ctx: CkksContext | undefined;
  const st = await stat(keyPath).catch(() => undefined);
  if (st !== undefined) {
    // The secret key is never made readable to others silently, nor its mode changed behind the user's back.
    if ((st.mode & 0o077) !== 0) throw new CipherMLError('CIPHERML_E_IO', `${keyPath} is readable by other users (mode ${(st.mode & 0o777).toString(8)})`, { param: '--key-dir', advice: `Run chmod 600 ${keyPath} if the key was not exposed, or delete it to make new keys.` });
    ctx = await readSecretKeyFile(keyPath);
    if (!sameParams(ctx, kp)) {
      log(`the keys in ${keyPath} were made for other keyparams: making new ones`);
      ctx.delete();
      ctx = undefined;
    }
  }
  try {
    if (ctx === undefined) {
      await mkdir(join(keyPath, '..'), { recursive: true, mode: 0o700 });
      ctx = await CkksContext.create(kp.params, { galoisSteps: kp.galoisSteps, deferEvaluationKeys: true });
      ctx.metadata = { packing: kp.packing, singleUpTo: kp.singleUpTo, inputDims: kp.inputDims, outputRange: kp.outputRange };
      await writeKeyFiles(keyPath, ctx, { overwrite: true });
      keysGenerated = true;
      log(`keys: made ${ctx.fingerprint} in ${keyPath} (secret 0600)`);
    }
    const pub = await readFileTyped(`${keyPath}.pub`, 'key.pub');
    const local = sha256(pub);
    let stored: string | undefined;
    try {
      stored = (await client.json<{ sha256: string }>('GET', p.keys)).sha256;
    } catch (e) {
      if (!(e instanceof CipherMLError && e.code === 'CIPHERML_E_SERVICE_NOT_FOUND')) throw e;
    }
    const keysUploaded = stored !== local;
    if (keysUploaded) {
      await client.upload('PUT', p.keys, pub);
      log(`keys: uploaded the evaluation keys (${pub.length} bytes)`);
    }
    let t = performance.now();
    const { samples, dims } = samplesOf(o.input, kp.inputDims);
    const packing = choosePacking(ctx, samples.length);
    const enc = packing === 'single' ? encryptSingle(ctx, samples, dims) : encryptBatch(ctx, samples, dims);
    const tEnc = performance.now() - t;
    t = performance.now();
    const { jobId } = (await client.upload('POST', p.infer, enc)) as { jobId: string };
    log(`job ${jobId}: ${samples.length} sample(s), ${packing} packing, ${enc.length} bytes`);
    const deadline = Date.now() + (o.timeoutMs ?? 600_000);
    for (;;) {
      const j = await client.json<{ status: string; error: { code: string; message: string } | null }>('GET', p.job(jobId));
      if (j.status === 'succeeded') break;
      if (j.status === 'failed' || j.status === 'cancelled') throw CipherMLError.revive({ code: (j.error?.code ?? 'CIPHERML_E_JOB_FAILED') as 'CIPHERML_E_JOB_FAILED', message: `inference job ${jobId} ${j.status}: ${j.error?.message ?? 'no message'}`, param: 'jobId' });
      if (Date.now() > deadline) throw new CipherMLError('CIPHERML_E_JOB_FAILED', `inference job ${jobId} did not finish in ${Math.round((o.timeoutMs ?? 600_000) / 1000)} s`, { param: 'jobId' });
      await sleep(o.pollMs ?? 200);
    }
    const out = await client.bytes('GET', p.output(jobId));
    const tService = performance.now() - t;
    t = performance.now();
    const output = decryptOutput(ctx, out);
    const tDec = performance.now() - t;
    const rangeWarning = checkOutputRange(output.data, kp.outputRange);
    return { output, jobId, fingerprint: ctx.fingerprint, keysGenerated, keysUploaded, packing, inputBytes: enc.length, outputBytes: out.length, ...(rangeWarning === undefined ? {} : { rangeWarning }), ms: { encrypt: tEnc, service: tService, decrypt: tDec } };
  } finally {
    ctx?.delete();
  }
}

/**
 * `cipherml gateway deploy` on files.
 *
 * @example
 * ```ts
 * await gatewayDeployFiles({ service, token, model: 'mnist/1', onnxFile: 'm.onnx', calibrationFile: 'c.npz' });
 * ```
 */
export async function gatewayDeployFiles(o: InferenceGatewayOptions & { readonly onnxFile: string; readonly calibrationFile: string }): Promise<DeployReply> {
  return gatewayDeploy({ ...o, onnx: await readFileTyped(o.onnxFile, '--onnx'), calibration: await readFileTyped(o.calibrationFile, '--calibration') });
}

/**
 * `cipherml gateway infer` on files: reads `input` (.npy), writes the decrypted output as float32 .npy.
 *
 * @example
 * ```ts
 * await gatewayInferFiles({ service, token, model: 'mnist/1', keyDir: 'keys', inputFile: 'x.npy', outFile: 'y.npy' });
 * ```
 */
export async function gatewayInferFiles(o: InferenceGatewayOptions & { readonly keyDir: string; readonly inputFile: string; readonly outFile: string; readonly overwrite?: boolean }): Promise<Omit<InferReply, 'output'> & { readonly dims: readonly number[] }> {
  await refuseExisting([o.outFile], o.overwrite === true);
  const input = readNpy(await readFileTyped(o.inputFile, '-i'), '-i');
  const { output, ...rest } = await gatewayInfer({ ...o, input });
  await writeFileSafely(o.outFile, writeNpy(output), { overwrite: o.overwrite === true });
  return { ...rest, dims: output.dims };
}
