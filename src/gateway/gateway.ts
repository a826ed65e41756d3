import { mkdir, readFile, rm, stat } from 'node:fs/promises';
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

/** Job states in which a job holds its user's inputs (mirrors the service's protocol; the gateway imports no service code). */
const OPEN_JOB_STATUSES: ReadonlySet<string> = new Set(['queued', 'running', 'awaiting_refresh']);

/** What the gateway records beside a key when it starts a job with it (`<key>.job.json`). */
interface JobRecord {
  readonly service: string;
  readonly jobId: string;
  readonly fingerprint: string;
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
  readonly #jobPath: string;

  constructor(options: GatewayOptions) {
    this.#opts = options;
    const { name, version } = parseModelName(options.model);
    this.client = new ServiceClient(options.service, options.token, { ca: options.tlsCa });
    this.#base = `/api/v1/${name}/${version}`;
    this.#keyPath = join(options.keyDir, `${name}@${version}`, 'ckks');
    this.#jobPath = `${this.#keyPath}.job.json`;
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

  /** The service user this gateway's token belongs to (bound into the sealed secret key). */
  async #user(): Promise<string> {
    return (await this.client.json<{ user: string }>('GET', '/api/v1/whoami')).user;
  }

  /**
   * Generates a fresh key set (`/keys/generate/model`), uploads the public context, then stores
   * the key 0600. Refused with `CIPHERML_E_JOB_ACTIVE` while a job of this user for the model is
   * open: that job's key stays as it is, locally and on the service.
   */
  async generateKeys(): Promise<{ fingerprint: string }> {
    await this.client.json('POST', `${this.#base}/application/register_user`);
    const open = await this.openJob();
    if (open !== undefined) {
      throw new CipherMLError('CIPHERML_E_JOB_ACTIVE', `job ${open.jobId} of this user for ${this.#opts.model} is ${open.status}; new keys would lock it out, so none were made`, { param: 'model', details: open });
    }
    await mkdir(join(this.#keyPath, '..'), { recursive: true, mode: 0o700 });
    const ctx = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: trainingGaloisSteps(TRAIN_CKKS_PARAMETERS.polyModulusDegree / 2) });
    try {
      // The service refuses this upload while a job is open (it may have opened since the check):
      // the local key is replaced only after the service took the new public context.
      await this.client.upload('PUT', `${this.#base}/context/public`, serializePublicContext(ctx));
      await writeKeyFiles(this.#keyPath, ctx, { overwrite: true });
      await rm(this.#jobPath, { force: true });
      if (this.#opts.passphrase !== undefined) {
        const binding = { user: await this.#user(), model: this.#opts.model, fingerprint: ctx.fingerprint };
        await this.client.upload('PUT', `${this.#base}/context/secret`, await sealSecret(serializeSecretKey(ctx), this.#opts.passphrase, binding));
      }
      return { fingerprint: ctx.fingerprint };
    } finally {
      ctx.delete();
    }
  }

  /**
   * Restores the key store from the sealed secret context on the service (a new gateway machine).
   * The box must be bound to this token's user, this model, and the key it holds.
   */
  async restoreKeys(passphrase: string): Promise<{ fingerprint: string }> {
    const box = await this.client.bytes('GET', `${this.#base}/context/secret`);
    const { plain, fingerprint } = await openSecret(box, passphrase, { user: await this.#user(), model: this.#opts.model });
    const ctx = await deserializeSecretKey(plain);
    try {
      if (ctx.fingerprint !== fingerprint) throw new CipherMLError('CIPHERML_E_SECRET_BOX_BINDING', `the sealed key has fingerprint ${ctx.fingerprint}, the box is bound to ${fingerprint}`, { param: 'secretContext' });
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
    // A group- or other-readable key is refused (CIPHERML_E_KEY_FILE_INSECURE naming the file and
    // the chmod to run), never silently re-moded: others may already have read it.
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
    const open = await this.openJob();
    if (open !== undefined) return this.#resume(open, hyper, input.features, t0);
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
      // Recorded beside the key, so that a later `gateway fit` resumes this job instead of starting over.
      await writeFileSafely(this.#jobPath, `${JSON.stringify({ service: this.client.base, jobId, fingerprint: ctx.fingerprint } satisfies JobRecord)}\n`, { mode: 0o600, overwrite: true });
      return await this.#follow(ctx, jobId, hyper, t0, data.rows, data.features);
    } finally {
      ctx.delete();
    }
  }

  /** Resumes the open job this key store started (same key set, same uploads); refuses one it did not start. */
  async #resume(open: { jobId: string; status: string }, hyper: TrainHyperParams, features: string, t0: number): Promise<{ trained: ModelJson; figures: FitFigures }> {
    const raw = await readFile(this.#jobPath, 'utf8').catch(() => undefined);
    const rec = raw === undefined ? undefined : (JSON.parse(raw) as Partial<JobRecord>);
    if (rec?.jobId !== open.jobId || rec.service !== this.client.base) {
      throw new CipherMLError('CIPHERML_E_JOB_ACTIVE', `job ${open.jobId} of this user for ${this.#opts.model} is still ${open.status}, and ${this.#opts.keyDir} did not start it; nothing was generated or uploaded`, {
        param: '--key-dir',
        details: { jobId: open.jobId, status: open.status },
        advice: `Rerun with the --key-dir of the gateway that started it to resume it, or cancel it: cipherml gateway cancel --service ${this.client.base} --token … --model ${this.#opts.model} --job ${open.jobId}.`,
      });
    }
    const ctx = await this.#secret();
    try {
      if (ctx.fingerprint !== rec.fingerprint) throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the key in ${this.#keyPath} (fingerprint ${ctx.fingerprint}) is not the key job ${open.jobId} was started with (${String(rec.fingerprint)})`, { param: '--key-dir' });
      this.#progress(`resuming job ${open.jobId} (${open.status}) with the key set and uploads it started with; no new keys`);
      const x = parseNumericCsv(features, 'features');
      return await this.#follow(ctx, open.jobId, hyper, t0, x.rows.length, x.header.length);
    } finally {
      ctx.delete();
    }
  }

  /** Follows a job to its end: progress, refreshes (decrypt and re-encrypt, trusted side), then download and decrypt. */
  async #follow(ctx: CkksContext, jobId: string, hyper: TrainHyperParams, t0: number, rows: number, features: number): Promise<{ trained: ModelJson; figures: FitFigures }> {
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
        return { trained, figures: { jobId, trainMs: Number(job.figures['trainMs']), totalMs: Math.round(performance.now() - t0), epochs: hyper.numberOfEpochs, refreshes: Number(job.figures['refreshes'] ?? 0), rows, features } };
      }
      if (job.status === 'failed' || job.status === 'cancelled') {
        const code = job.error?.code === 'CIPHERML_E_REFRESH_TIMEOUT' || job.error?.code === 'CIPHERML_E_JOB_CANCELLED' ? job.error.code : 'CIPHERML_E_JOB_FAILED';
        throw new CipherMLError(code, `job ${jobId} ${job.status}: ${job.error?.message ?? 'unknown'}`, { param: 'jobId', details: { error: job.error } });
      }
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
  }

  /** The open job (queued, running or awaiting a refresh) of this user for the model, if any. */
  async openJob(): Promise<{ jobId: string; status: string } | undefined> {
    let jobs: { jobId: string; status: string }[];
    try {
      ({ jobs } = await this.client.json<{ jobs: { jobId: string; status: string }[] }>('GET', `${this.#base}/jobs`));
    } catch (e) {
      // Not registered yet: no job.
      if (e instanceof CipherMLError && e.code === 'CIPHERML_E_SERVICE_FORBIDDEN') return undefined;
      throw e;
    }
    const open = jobs.find((j) => OPEN_JOB_STATUSES.has(j.status));
    return open === undefined ? undefined : { jobId: open.jobId, status: open.status };
  }

  /**
   * Cancels a job of this user for the model (the open one when no id is given); the service
   * frees the inputs, so a new `fit` may start.
   */
  async cancel(jobId?: string): Promise<{ jobId: string; status: string }> {
    await this.client.json('POST', `${this.#base}/application/register_user`);
    const id = jobId ?? (await this.openJob())?.jobId;
    if (id === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `no open job of this user for ${this.#opts.model}`, { param: '--job' });
    const r = await this.client.json<{ jobId: string; status: string }>('POST', `${this.#base}/jobs/${id}/cancel`);
    await rm(this.#jobPath, { force: true });
    return { jobId: r.jobId, status: r.status };
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
