import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext, deserializePublicContext, serializePublicContext } from '../ckks/index.ts';
import { loadCsvDataset } from './csv.ts';
import { trainPoly3LogReg } from './poly-logreg.ts';
import { decryptScores, decryptWeights, encryptPredictData, encryptTrainingData, encryptWeights, planPacking, predictEncrypted, TRAIN_CKKS_PARAMETERS, trainEncrypted, trainingGaloisSteps, validateHyperParams, WEIGHT_BOUND } from './encrypted-lr.ts';

let gateway: CkksContext;
let service: CkksContext;
beforeAll(async () => {
  gateway = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: trainingGaloisSteps(512) });
  service = await deserializePublicContext(serializePublicContext(gateway));
});
afterAll(() => { gateway.delete(); service.delete(); });

describe('planPacking', () => {
  it('packs rows into power-of-two blocks', () => {
    expect(planPacking(984, 4096)).toEqual({ period: 1024, blocks: 1, rows: 984 });
    expect(planPacking(455, 4096, 200)).toEqual({ period: 256, blocks: 2, rows: 455 });
  });
});

describe('encrypted logistic regression', () => {
  it('matches the plaintext poly-3 trainer within 2e-4 on the breast cancer data, with a refresh per extra epoch, and predicts the same classes', async () => {
    const a = await loadCsvDataset('examples/data/breast_homo_guest.csv');
    const b = await loadCsvDataset('examples/data/breast_homo_host.csv');
    const rows = [...a.features, ...b.features];
    const labels = Float64Array.from([...a.labels, ...b.labels]);
    const F = a.featureNames.length;
    const init = { coef: Float64Array.from({ length: F }, (_, j) => (j % 3) * 0.01), intercept: 0.05 };
    const hyper = validateHyperParams({ numberOfEpochs: 3, learningRate: 0.1, numberOfFeatures: F, logisticRegressionActivation: 'sigmoid_poly_3_approximation' });
    const data = encryptTrainingData(gateway, rows, labels);
    let refreshes = 0;
    const r = await trainEncrypted(service, data, encryptWeights(gateway, init.coef, init.intercept), hyper, {
      refresh: async (bytes) => {
        refreshes++;
        const w = decryptWeights(gateway, bytes);
        return encryptWeights(gateway, w.coef, w.intercept);
      },
    });
    expect(r.refreshes).toBe(2);
    expect(refreshes).toBe(2);
    const got = decryptWeights(gateway, r.weights);
    const want = trainPoly3LogReg(rows, labels, init, { epochs: 3, learningRate: 0.1 });
    const err = Math.max(Math.abs(got.intercept - want.intercept), ...Array.from(want.coef, (w, j) => Math.abs(w - got.coef[j]!)));
    // 2–3·10⁻⁵ measured over 7 runs; 4–8·10⁻⁴ with the special prime equal to q₀ (see TRAIN_CKKS_PARAMETERS).
    expect(err).toBeLessThan(2e-4);
    expect(Math.max(...Array.from(want.coef, Math.abs))).toBeGreaterThan(0.02);

    const test = await loadCsvDataset('examples/data/breast_homo_test.csv');
    const fresh = encryptWeights(gateway, got.coef, got.intercept);
    const z = decryptScores(gateway, predictEncrypted(service, fresh, encryptPredictData(gateway, test.features), F));
    expect(z.length).toBe(test.features.length);
    test.features.forEach((x, i) => {
      const plain = x.reduce((s, v, j) => s + v * got.coef[j]!, got.intercept);
      expect(Math.abs(z[i]! - plain)).toBeLessThan(1e-3);
    });
  });

  it('sums 512 slots by rotations within 2·10⁻⁵ (the key-switching error the special prime bounds)', () => {
    const x = Float64Array.from({ length: gateway.slotCount }, (_, i) => (i % 512 < 455 ? Math.sin((i % 512) * 1.7) * 2 : 0));
    const want = x.slice(0, 512).reduce((a, b) => a + b, 0);
    const v = service.encryptVector(x);
    const s = service.sumSlots(v, 512);
    expect(Math.abs(gateway.decryptVector(s, 1)[0]! - want)).toBeLessThan(2e-5);
    v.delete();
    s.delete();
  });

  it('refuses weights outside ±WEIGHT_BOUND, naming the coefficient', () => {
    expect(() => encryptWeights(gateway, [0, 40], 0)).toThrow(/model coefficient 1 is 40, outside ±32/);
    expect(() => encryptWeights(gateway, [0], Number.NaN)).toThrow(/model intercept is NaN/);
    expect(() => encryptWeights(gateway, [0, -WEIGHT_BOUND], WEIGHT_BOUND)).not.toThrow();
  });

  it('rejects data whose feature count differs from the hyper-parameters, and ciphertexts under another key', async () => {
    const rows = [Float64Array.of(1, 2), Float64Array.of(0, 1)];
    const data = encryptTrainingData(gateway, rows, [1, 0]);
    const hyper = validateHyperParams({ numberOfEpochs: 1, learningRate: 0.1, numberOfFeatures: 3 });
    await expect(trainEncrypted(service, data, encryptWeights(gateway, [0, 0, 0], 0), hyper, { refresh: async (b) => b })).rejects.toMatchObject({ code: 'CIPHERML_E_SHAPE_MISMATCH' });
    const other = await CkksContext.create(TRAIN_CKKS_PARAMETERS, { galoisSteps: [1] });
    try {
      const foreign = encryptTrainingData(other, rows, [1, 0]);
      await expect(trainEncrypted(service, foreign, encryptWeights(gateway, [0, 0], 0), { ...hyper, numberOfFeatures: 2 }, { refresh: async (b) => b })).rejects.toMatchObject({ code: 'CIPHERML_E_KEY_MISMATCH' });
    } finally {
      other.delete();
    }
    expect(() => validateHyperParams({ numberOfEpochs: 0, learningRate: 0.1, numberOfFeatures: 2 })).toThrow(/numberOfEpochs/);
    expect(() => validateHyperParams({ numberOfEpochs: 1, learningRate: 50, numberOfFeatures: 2 })).toThrow(/learningRate/);
    expect(() => validateHyperParams({ numberOfEpochs: 1, learningRate: 0.1, numberOfFeatures: 2, logisticRegressionActivation: 'relu' })).toThrow(/logisticRegressionActivation/);
  });
});
