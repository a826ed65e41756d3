import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CipherMLError } from '../core/errors.ts';
import { packageRoot } from '../core/paths.ts';
import { Gateway, parseNumericCsv, type FitFigures } from '../gateway/index.ts';
import { trainPoly3LogReg } from '../ml/poly-logreg.ts';
import { openStorage, startService } from '../service/index.ts';

/**
 * The encrypted-training demo (HE4Cloud's flow) on the bundled breast cancer data: an untrusted
 * service on an embedded SQLite store, a model owner who deploys a model, and a user's trusted
 * gateway that generates the CKKS keys, encrypts the model and the data, has the service train on
 * them, decrypts the trained model and predicts on encrypted test features. Service and gateway
 * talk HTTP on localhost; the service never holds the secret key.
 */

/** Options of {@link runServiceDemo}. */
export interface ServiceDemoOptions {
  /** Keep the service's data folder and the gateway's keys here instead of a temporary folder. */
  readonly dir?: string;
  readonly onLine?: (line: string) => void;
}

/** The demo's outcome. */
export interface ServiceDemoResult {
  readonly rows: number;
  readonly features: number;
  readonly testRows: number;
  readonly figures: FitFigures;
  /** Accuracy on the held-out rows of the model trained on ciphertexts. */
  readonly accuracy: number;
  /** The same training in plaintext with the same σ₃ polynomial (the reference). */
  readonly plaintextAccuracy: number;
  /** max |w_encrypted − w_plaintext| over coefficients and intercept. */
  readonly maxWeightError: number;
}

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8')) as unknown;
}

/**
 * Runs the whole flow and returns its figures.
 *
 * @example
 * ```ts
 * const r = await runServiceDemo({ onLine: (l) => console.error(l) });
 * console.log(r.accuracy, r.maxWeightError);
 * ```
 */
export async function runServiceDemo(options: ServiceDemoOptions = {}): Promise<ServiceDemoResult> {
  const say = options.onLine ?? (() => undefined);
  const root = options.dir ?? (await mkdtemp(join(tmpdir(), 'cipherml-service-demo-')));
  const ex = (f: string) => join(packageRoot(), 'examples', 'service', f);
  const dataDir = join(root, 'service-data');
  try {
    const storage = await openStorage({ dataDir });
    let owner: string;
    let user: string;
    try {
      owner = await storage.createToken((await storage.ensureUser('owner', 'owner')).id);
      user = await storage.createToken((await storage.ensureUser('alice', 'user')).id);
    } finally {
      await storage.close();
    }
    const svc = await startService({ dataDir, port: 0 });
    try {
      say(`[service] listening on ${svc.url} (untrusted side; SQLite in ${dataDir})`);
      const deployed = await fetch(`${svc.url}/api/v1/breast-cancer/1/deploy_model`, { method: 'POST', headers: { authorization: `Bearer ${owner}` } });
      if (!deployed.ok) throw new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `deploy_model answered ${deployed.status}: ${await deployed.text()}`, { param: 'service' });
      say('[owner] deployed model breast-cancer/1');
      const gw = new Gateway({ service: svc.url, token: user, model: 'breast-cancer/1', keyDir: join(root, 'gateway-keys'), onProgress: (l) => say(`[gateway] ${l}`) });
      const model = (await readJson(ex('model.json'))) as { coef_: number[][]; intercept_: number[] };
      const hyper = (await readJson(ex('hyper_params.json'))) as { numberOfEpochs: number; learningRate: number };
      const features = await readFile(ex('features.csv'), 'utf8');
      const labels = await readFile(ex('labels.csv'), 'utf8');
      const { trained, figures } = await gw.fit({ model, requirements: (await readJson(ex('requirements.json'))) as Record<string, unknown>, hyper, features, labels });
      say(`[gateway] trained on ciphertexts in ${(figures.trainMs / 1000).toFixed(1)} s (${figures.epochs} epochs, ${figures.refreshes} refreshes through the gateway)`);
      const testFeatures = await readFile(ex('test_features.csv'), 'utf8');
      const probabilities = await gw.predict(testFeatures);
      const testLabels = parseNumericCsv(await readFile(ex('test_labels.csv'), 'utf8'), 'test_labels.csv').rows.map((r) => r[0]!);
      const trainX = parseNumericCsv(features, 'features.csv').rows;
      const trainY = Float64Array.from(parseNumericCsv(labels, 'labels.csv').rows.map((r) => r[0]!));
      const plain = trainPoly3LogReg(trainX, trainY, { coef: Float64Array.from(model.coef_[0]!), intercept: model.intercept_[0]! }, { epochs: hyper.numberOfEpochs, learningRate: hyper.learningRate });
      const testX = parseNumericCsv(testFeatures, 'test_features.csv').rows;
      const plainCorrect = testX.filter((x, i) => (x.reduce((s, v, j) => s + v * plain.coef[j]!, plain.intercept) > 0 ? 1 : 0) === testLabels[i]).length;
      const correct = Array.from(probabilities).filter((p, i) => (p > 0.5 ? 1 : 0) === testLabels[i]).length;
      const errors = [...trained.coef_[0]!.map((w, j) => Math.abs(w - plain.coef[j]!)), Math.abs(trained.intercept_[0]! - plain.intercept)];
      await svc.idle();
      return {
        rows: figures.rows,
        features: figures.features,
        testRows: testX.length,
        figures,
        accuracy: correct / testX.length,
        plaintextAccuracy: plainCorrect / testX.length,
        maxWeightError: Math.max(...errors),
      };
    } finally {
      await svc.close();
    }
  } finally {
    if (options.dir === undefined) await rm(root, { recursive: true, force: true });
  }
}
