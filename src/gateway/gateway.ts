import { chmod, mkdir, stat } from 'node:fs/promises';
import { parseJsonBounded } from '../core/bounded.ts';
import type { JsonLimits } from '../core/bounded.ts';
import { readFileBounded } from '../core/bounded-file.ts';
import { boundedLines, DEFAULT_LINE_LIMITS } from '../core/bounded-text.ts';
import type { LineLimits } from '../core/bounded-text.ts';
import { join } from 'node:path';
import { CipherMLError } from '../core/errors.ts';
import { refuseExisting, writeFileSafely } from '../core/io.ts';
import { CkksContext, deserializeSecretKey, readSecretKeyFile, serializePublicContext, serializeSecretKey, writeKeyFiles } from '../ckks/index.ts';
import type { CsvDataset } from '../ml/csv.ts';
import { sigmoid } from '../ml/logistic-regression.ts';
import { decryptScores, decryptWeights, encryptPredictData, encryptTrainingData, encryptWeights, TRAIN_CKKS_PARAMETERS, trainingGaloisSteps, validateHyperParams } from '../ml/encrypted-lr.ts';
import type { TrainHyperParams } from '../ml/encrypted-lr.ts';
import { ServiceClient } from './client.ts';
import { openSecret, sealSecret } from './secret-box.ts';

/** scikit-learn's linear model shape, as in HE4Cloud's model.json. */
export interface ModelJson {
  readonly coef_: readonly (readonly number[])[];
  readonly intercept_: readonly number[];
}

/** Where the gateway talks to and keeps its keys. */
export interface GatewayOptions {
  readonly service: string;
  readonly token: string;
  /** `NAME/VERSION` of the deployed model. */
  readonly model: string;
  /** Local key store (default `~/.cipherml/gateway`); secret keys are written 0600. */
  readonly keyDir: string;
  /** When set, the secret key is also uploaded, sealed under this passphrase (opaque to the service). */
  readonly passphrase?: string | undefined;
  readonly onProgress?: (line: string) => void;
  /** PEM CA certificate(s) for an https:// service with a private CA (`--tls-ca`). */
  readonly tlsCa?: Uint8Array | undefined;
}

/** Figures of a fit (the CLI's `--json` output). */
export interface FitFigures {
  readonly jobId: string;
  readonly trainMs: number;
  readonly totalMs: number;
  readonly epochs: number;
  readonly refreshes: number;
  readonly rows: number;
  readonly features: number;
}

/** Limits of the gateway's JSON files (model, requirements, hyper-parameters). */
const JSON_FILE_LIMITS: JsonLimits = { maxBytes: 16 << 20, maxDepth: 64 };

function parseModelName(model: string): { name: string; version: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)\/([A-Za-z0-9][A-Za-z0-9._-]*)$/.exec(model);
  if (m === null) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected NAME/VERSION, got ${JSON.stringify(model)}`, { param: '--model' });
  return { name: m[1]!, version: m[2]! };
}

/**
 * Parses a features or labels CSV: a header line, then numbers. A bad line is reported by its
 * 1-based line number (header = line 1). Bounded by `limits` (core/bounded-text.ts).
 *
 * @example
 * ```ts
 * parseNumericCsv('a,b\n1,2\n', 'features.csv').rows; // [[1, 2]]
 * ```
 */
export function parseNumericCsv(text: string, source: string, limits: Partial<LineLimits> = {}): { header: string[]; rows: Float64Array[] } {
  // Size, line length and cell count are checked per line before any line is split.
  const lines = boundedLines(text, source, source, limits);
  const header = (lines[0]?.line === 1 ? lines[0].text : '').split(',').map((h) => h.trim());
  if (header.length === 0 || header[0] === '') throw new CipherMLError('CIPHERML_E_CSV_INVALID', `${source} line 1: missing header`, { param: source, details: { line: 1 } });
  const rows: Float64Array[] = [];
  for (const { line: n, text: line } of lines.slice(1)) {
    const cells = line.split(',');
    if (cells.length !== header.length) throw new CipherMLError('CIPHERML_E_CSV_INVALID', `${source} line ${n}: ${cells.length} cells, the header has ${header.length}`, { param: source, details: { line: n } });
    const row = Float64Array.from(cells, (c) => (c.trim() === '' ? Number.NaN : Number(c)));
    const bad = row.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new CipherMLError('CIPHERML_E_CSV_INVALID', `${source} line ${n}: column "${header[bad]}" is ${JSON.stringify(cells[bad]!.slice(0, 64))}, not a finite number`, { param: source, details: { line: n, column: header[bad] } });
    rows.push(row);
  }
  if (rows.length === 0) throw new CipherMLError('CIPHERML_E_CSV_INVALID', `${source} has no data lines`, { param: source, details: { line: 2 } });
  return { header, rows };
}

/** Checks a model.json value. */
export function validateModelJson(value: unknown, features: number): ModelJson {
  const m = value as Partial<ModelJson> | null;
  const coef = m?.coef_?.[0];
  if (m === null || !Array.isArray(m.coef_) || m.coef_.length !== 1 || !Array.isArray(coef) || !Array.isArray(m.intercept_) || m.intercept_.length !== 1 || ![...coef, m.intercept_[0]].every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'model.json must be {"coef_": [[w1, …, wF]], "intercept_": [b]} with finite numbers', { param: '--model-file' });
  }
  if (coef.length !== features) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `model.json has ${coef.length} coefficients, the features ${features} columns`, { param: '--model-file', details: { model: coef.length, features } });
  return m as ModelJson;
}

/**
 * The trusted gateway: holds the CKKS secret key, encrypts model and data, drives the fit job
 * (answering refresh requests), decrypts the trained model, and predicts.
 *
 * @example
 * ```ts
 * const gw = new Gateway({ service: 'http://127.0.0.1:8080', token, model: 'lr/1', keyDir: 'keys' });
 * const { trained } = await gw.fit({ model, hyper, features: csvText, labels: csvText });
 * ```
 */
export class Gateway {
  readonly client: ServiceClient;
  readonly #opts: GatewayOptions;
  readonly #base: string;
  readonly #keyPath: string;

  constructor(options: GatewayOptions) {
    this.#opts = options;
    const { name, version } = parseModelName(options.model);
    this.client = new ServiceClient(options.service, options.token, { ca: options.tlsCa });
    this.#base = `/api/v1/${name}/${version}`;
    this.#keyPath = join(options.keyDir, `${name}@${version}`, 'ckks');
  }

  #progress(line: string): void {
    this.#opts.onProgress?.(line);
  }

  /**
   * Checks, before any key generation or encryption, that the service answers at its URL, accepts
   * the token, and has the model deployed; each failure names the flag to fix.
   */
  async preflight(): Promise<void> {
    let models: { name: string; version: string }[];
    try {
      // An authenticated route (info/version answers without a token): checks the token too.
      ({ models } = await this.client.json<{ models: { name: string; version: string }[] }>('GET', '/api/v1/models'));
    } catch (e) {
      if (e instanceof CipherMLError && e.code === 'CIPHERML_E_PEER_UNAVAILABLE') {
        throw new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `no service answers at ${this.client.base}`, { param: '--service', cause: e, advice: 'Check the --service URL (scheme, host and port of `cipherml serve`) and that the service is running; nothing was encrypted or sent.' });
      }
      if (e instanceof CipherMLError && e.code === 'CIPHERML_E_SERVICE_UNAUTHENTICATED') {
        throw new CipherMLError('CIPHERML_E_SERVICE_UNAUTHENTICATED', `the service at ${this.client.base} does not accept this token`, { param: '--token', cause: e, advice: 'Pass a token printed by `cipherml serve token create` for this service (same --data folder or --db); nothing was encrypted or sent.' });
      }
      throw e;
    }
    if (!models.some((m) => `${m.name}/${m.version}` === this.#opts.model)) {
      throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `model ${this.#opts.model} is not deployed on ${this.client.base}`, {
        param: '--model',
        advice: `The model owner deploys it first (POST /api/v1/${this.#opts.model}/deploy_model); deployed: ${models.map((m) => `${m.name}/${m.version}`).join(', ') || 'none'}.`,
      });
    }
  }

  /** Generates a fresh key set (`/keys/generate/model`), stores it 0600, uploads the public context. */
  async generateKeys(): Promise<{ fingerprint: string }> {
    await mkdir(join(this.#keyPath, '..'), { recursive: true, mode: 0o700 });
    const ctx = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: trainingGaloisSteps(TRAIN_CKKS_PARAMETERS.polyModulusDegree / 2) });
    try {
      await writeKeyFiles(this.#keyPath, ctx, { overwrite: true });
      await this.client.json('POST', `${this.#base}/application/register_user`);
      await this.client.upload('PUT', `${this.#base}/context/public`, serializePublicContext(ctx));
      if (this.#opts.passphrase !== undefined) await this.client.upload('PUT', `${this.#base}/context/secret`, sealSecret(serializeSecretKey(ctx), this.#opts.passphrase));
      return { fingerprint: ctx.fingerprint };
    } finally {
      ctx.delete();
    }
  }

  /** Restores the key store from the sealed secret context on the service (a new gateway machine). */
  async restoreKeys(passphrase: string): Promise<{ fingerprint: string }> {
    const box = await this.client.bytes('GET', `${this.#base}/context/secret`);
    const ctx = await deserializeSecretKey(openSecret(box, passphrase));
    try {
      await mkdir(join(this.#keyPath, '..'), { recursive: true, mode: 0o700 });
      await writeFileSafely(this.#keyPath, serializeSecretKey(ctx), { mode: 0o600, overwrite: true });
      return { fingerprint: ctx.fingerprint };
    } finally {
      ctx.delete();
    }
  }

  async #secret(): Promise<CkksContext> {
    const st = await stat(this.#keyPath).catch(() => undefined);
    if (st === undefined) throw new CipherMLError('CIPHERML_E_IO', `no key for ${this.#opts.model} in ${this.#opts.keyDir}: run fit first`, { param: '--key-dir' });
    if ((st.mode & 0o077) !== 0) await chmod(this.#keyPath, 0o600);
    return readSecretKeyFile(this.#keyPath);
  }

  /** Encrypts the training set (`/encrypt/data/fit`). */
  async encryptFitData(features: string, labels: string, batchSize?: number): Promise<{ bytes: Uint8Array; rows: number; features: number }> {
    const x = parseNumericCsv(features, 'features');
    const y = parseNumericCsv(labels, 'labels');
    if (y.header.length !== 1) throw new CipherMLError('CIPHERML_E_CSV_INVALID', `labels line 1: expected one column, got ${y.header.length}`, { param: 'labels', details: { line: 1 } });
    if (y.rows.length !== x.rows.length) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${x.rows.length} feature rows but ${y.rows.length} labels`, { param: 'labels' });
    const ctx = await this.#secret();
    try {
      return { bytes: encryptTrainingData(ctx, x.rows, y.rows.map((r) => r[0]!), batchSize), rows: x.rows.length, features: x.header.length };
    } finally {
      ctx.delete();
    }
  }

  /**
   * The whole fit: keys, register, profile, uploads, job with progress and refreshes, download
   * and decrypt. The decrypted model is re-uploaded freshly encrypted for predict.
   */
  async fit(input: { model: unknown; requirements?: Record<string, unknown>; hyper: unknown; features: string; labels: string }): Promise<{ trained: ModelJson; figures: FitFigures }> {
    const t0 = performance.now();
    const hyper: TrainHyperParams = validateHyperParams(input.hyper);
    // Cheap checks first: the inputs' shapes, then the service, before any key or ciphertext.
    const columns = parseNumericCsv(input.features, 'features').header.length;
    if (columns !== hyper.numberOfFeatures) {
      throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `the features CSV has ${columns} column${columns === 1 ? '' : 's'}, numberOfFeatures in the hyper-parameters is ${hyper.numberOfFeatures}`, {
        param: '--features',
        advice: columns === 1 ? 'A single column looks like the labels file: pass the features CSV as --features and the labels as --labels.' : 'Pass the features CSV the model was made for, or set numberOfFeatures to its column count.',
      });
    }
    validateModelJson(input.model, columns);
    await this.preflight();
    await this.generateKeys();
    const batchSize = input.requirements?.['batchSize'];
    await this.client.json('POST', `${this.#base}/add_profile`, input.requirements ?? {});
    const data = await this.encryptFitData(input.features, input.labels, typeof batchSize === 'number' ? Math.min(batchSize, TRAIN_CKKS_PARAMETERS.polyModulusDegree / 2) : undefined);
    if (data.features !== hyper.numberOfFeatures) throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `the features CSV has ${data.features} columns, numberOfFeatures is ${hyper.numberOfFeatures}`, { param: '--hyper-params' });
    const model = validateModelJson(input.model, data.features);
    const ctx = await this.#secret();
    try {
      await this.client.upload('PUT', `${this.#base}/model`, encryptWeights(ctx, model.coef_[0]!, model.intercept_[0]!));
      await this.client.upload('PUT', `${this.#base}/data/fit`, data.bytes);
      this.#progress(`uploaded ${data.rows} encrypted rows × ${data.features} features`);
      const { jobId } = await this.client.json<{ jobId: string }>('POST', `${this.#base}/fit`, { ...hyper });
      let last = '';
      let unreachableSince: number | undefined;
      for (;;) {
        let job: { status: string; progress: number; error: { code: string; message: string } | null; figures: Record<string, unknown> };
        try {
          job = await this.client.json('GET', `${this.#base}/jobs/${jobId}`);
          unreachableSince = undefined;
        } catch (e) {
          // A restarting service loses nothing: keep polling for up to a minute.
          if (!(e instanceof CipherMLError && e.code === 'CIPHERML_E_PEER_UNAVAILABLE')) throw e;
          unreachableSince ??= performance.now();
          if (performance.now() - unreachableSince > 60_000) throw e;
          this.#progress(`service unreachable, retrying: ${e.message.split('.')[0]}`);
          await new Promise((r) => setTimeout(r, 250));
          continue;
        }
        const line = `job ${jobId}: ${job.status}, ${(job.progress * 100).toFixed(0)}% (refreshes ${String(job.figures['refreshes'] ?? 0)})`;
        if (line !== last) this.#progress((last = line));
        if (job.status === 'succeeded') {
          const w = decryptWeights(ctx, await this.client.bytes('GET', `${this.#base}/model/trained`));
          await this.client.upload('PUT', `${this.#base}/model/trained`, encryptWeights(ctx, w.coef, w.intercept));
          const trained: ModelJson = { coef_: [Array.from(w.coef)], intercept_: [w.intercept] };
          return { trained, figures: { jobId, trainMs: Number(job.figures['trainMs']), totalMs: Math.round(performance.now() - t0), epochs: hyper.numberOfEpochs, refreshes: Number(job.figures['refreshes'] ?? 0), rows: data.rows, features: data.features } };
        }
        if (job.status === 'failed') throw new CipherMLError('CIPHERML_E_JOB_FAILED', `job ${jobId} failed: ${job.error?.message ?? 'unknown'}`, { param: 'jobId', details: { error: job.error } });
        if (job.status === 'awaiting_refresh') {
          const bytes = await this.client.bytes('GET', `${this.#base}/jobs/${jobId}/refresh`).catch(() => undefined);
          if (bytes !== undefined) {
            const w = decryptWeights(ctx, bytes);
            const answered = await this.client.upload('PUT', `${this.#base}/jobs/${jobId}/refresh`, encryptWeights(ctx, w.coef, w.intercept)).catch((e: unknown) => {
              // Answered already, or the service restarted in between: the next poll decides.
              if (e instanceof CipherMLError && (e.code === 'CIPHERML_E_SERVICE_CONFLICT' || e.code === 'CIPHERML_E_PEER_UNAVAILABLE')) return undefined;
              throw e;
            });
            if (answered !== undefined) continue;
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      ctx.delete();
    }
  }

  /** Encrypts feature rows for predict (`/encrypt/data/predict`). */
  async encryptPredictData(features: string): Promise<Uint8Array> {
    const x = parseNumericCsv(features, 'features');
    const ctx = await this.#secret();
    try {
      return encryptPredictData(ctx, x.rows);
    } finally {
      ctx.delete();
    }
  }

  /** Predicts on a features CSV: encrypts (`/encrypt/data/predict`), asks the service, decrypts; σ of the logit. */
  async predict(features: string): Promise<Float64Array> {
    const x = parseNumericCsv(features, 'features');
    await this.preflight();
    const ctx = await this.#secret();
    try {
      const scores = await this.client.bytes('POST', `${this.#base}/predict?features=${x.header.length}`, encryptPredictData(ctx, x.rows));
      return Float64Array.from(decryptScores(ctx, scores), sigmoid);
    } finally {
      ctx.delete();
    }
  }
}

/**
 * CLI helper: `gateway fit` with files.
 *
 * @example
 * ```ts
 * await gatewayFitFiles({ service, token, model: 'lr/1', keyDir: 'keys', modelFile: 'model.json', hyperParams: 'hp.json', features: 'x.csv', labels: 'y.csv', out: 'trained.json' });
 * ```
 */
export async function gatewayFitFiles(o: GatewayOptions & { modelFile: string; requirements?: string | undefined; hyperParams: string; features: string; labels: string; out: string; overwrite?: boolean }): Promise<FitFigures> {
  // Files are read only after their size is checked (CSV ≤ 256 MiB; JSON ≤ 16 MiB, ≤ 64 levels).
  const read = async (p: string, param: string, maxBytes: number = DEFAULT_LINE_LIMITS.maxChars): Promise<string> => Buffer.from(await readFileBounded(p, param, maxBytes)).toString('utf8');
  const json = async (p: string, param: string): Promise<unknown> => parseJsonBounded(await read(p, param, JSON_FILE_LIMITS.maxBytes), param, JSON_FILE_LIMITS);
  await refuseExisting([o.out], o.overwrite === true).catch(() => {
    throw new CipherMLError('CIPHERML_E_FILE_EXISTS', `${o.out} already exists`, { param: '--out', advice: 'Choose another --out file, or pass --overwrite to replace it; nothing was encrypted or sent.' });
  });
  const gw = new Gateway(o);
  const { trained, figures } = await gw.fit({
    model: await json(o.modelFile, '--model-file'),
    ...(o.requirements === undefined ? {} : { requirements: (await json(o.requirements, '--requirements')) as Record<string, unknown> }),
    hyper: await json(o.hyperParams, '--hyper-params'),
    features: await read(o.features, '--features'),
    labels: await read(o.labels, '--labels'),
  });
  await writeFileSafely(o.out, `${JSON.stringify(trained)}\n`, { overwrite: o.overwrite === true, param: '--out', overwriteFlag: '--overwrite' });
  return figures;
}

/**
 * CLI helper: `gateway predict` with files; writes a CSV with header `probability`.
 *
 * @example
 * ```ts
 * await gatewayPredictFiles({ service, token, model: 'lr/1', keyDir: 'keys', features: 'x.csv', out: 'p.csv' });
 * ```
 */
export async function gatewayPredictFiles(o: GatewayOptions & { features: string; out: string; overwrite?: boolean }): Promise<{ rows: number }> {
  await refuseExisting([o.out], o.overwrite === true).catch(() => {
    throw new CipherMLError('CIPHERML_E_FILE_EXISTS', `${o.out} already exists`, { param: '--out', advice: 'Choose another --out file, or pass --overwrite to replace it; nothing was encrypted or sent.' });
  });
  const text = Buffer.from(await readFileBounded(o.features, '--features', DEFAULT_LINE_LIMITS.maxChars)).toString('utf8');
  const p = await new Gateway(o).predict(text);
  await writeFileSafely(o.out, `probability\n${Array.from(p, (v) => v.toPrecision(8)).join('\n')}\n`, { overwrite: o.overwrite === true, param: '--out', overwriteFlag: '--overwrite' });
  return { rows: p.length };
}

/** Splits a dataset into features.csv / labels.csv texts (examples and tests). */
export function toFeatureLabelCsv(ds: CsvDataset): { features: string; labels: string } {
  return {
    features: `${ds.featureNames.join(',')}\n${ds.features.map((r) => Array.from(r).join(',')).join('\n')}\n`,
    labels: `y\n${Array.from(ds.labels).join('\n')}\n`,
  };
}
