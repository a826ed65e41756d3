import { describe, expect, it } from 'vitest';
import type { TensorSpec } from './gen/cipherml/fl/v1/fl_pb.ts';
import { ServerOptStrategy } from './strategies-opt.ts';
import { PlainFedAvg, type FitOutcome, type Strategy } from './strategy.ts';

const specs = [{ name: 'w', shape: [2] }] as unknown as TensorSpec[];
const outcome = (id: string, n: number, values: number[]): FitOutcome => ({ workerId: id, numExamples: n, weight: 0, decoded: [{ name: 'w', shape: [2], values: Float64Array.from(values) }], metrics: {} });

describe('server optimizers on the aggregate (Reddi et al. 2021, Algorithm 2)', () => {
  it('FedAdam, FedYogi and FedAdagrad step from the current global model by the known formulas', async () => {
    const x0 = [1, -1];
    // FedAvg aggregate of the two workers: (3·[2, 0] + 1·[6, -4]) / 4 = [3, -1].
    const agg = [3, -1];
    for (const optimizer of ['fedadam', 'fedyogi', 'fedadagrad'] as const) {
      const s = new ServerOptStrategy(new PlainFedAvg(), { optimizer, eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
      s.payload({ kind: 'plain', tensors: [{ name: 'w', shape: [2], values: Float64Array.from(x0) }] });
      const next = await s.aggregateFit(1, [outcome('1', 3, [2, 0]), outcome('2', 1, [6, -4])], specs);
      expect(next.kind).toBe('plain');
      const got = (next as unknown as { tensors: { values: Float64Array }[] }).tensors[0]!.values;
      x0.forEach((x, i) => {
        const d = agg[i]! - x;
        const m = 0.1 * d;
        const v = optimizer === 'fedadagrad' ? d * d : optimizer === 'fedadam' ? 0.01 * d * d : 0.01 * d * d; // v₀ = 0: Yogi's sign(0 − Δ²) = −1
        expect(got[i]).toBeCloseTo(x + (0.1 * m) / (Math.sqrt(v) + 1e-3), 10);
      });
    }
  });

  it('refuses key holder "clients" (the server never has the aggregate) and bad hyper-parameters', () => {
    const clientsHeld = { ...new PlainFedAvg(), keyHolder: 'clients' } as unknown as Strategy;
    expect(() => new ServerOptStrategy(clientsHeld, { optimizer: 'fedadam' })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_CONFIG_INVALID', param: 'server-optimizer' }));
    expect(() => new ServerOptStrategy(new PlainFedAvg(), { optimizer: 'fedyogi', eta: 0 })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_CONFIG_INVALID', param: 'server-learning-rate' }));
    expect(() => new ServerOptStrategy(new PlainFedAvg(), { optimizer: 'fedyogi', beta2: 1 })).toThrow(expect.objectContaining({ param: 'beta2' }));
  });
});
