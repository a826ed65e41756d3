import { CipherMLError } from '../core/errors.ts';
import type { FitResult, ModelPayload, SecAggRound, TensorSpec } from './gen/cipherml/fl/v1/fl_pb.ts';
import type { NamedTensor } from './protocol.ts';
import type { FitOutcome, GlobalModel, StageRunner, Strategy, StrategyInfo } from './strategy.ts';

/**
 * Server-side optimizers on the aggregate (Reddi et al., "Adaptive Federated Optimization",
 * ICLR 2021, Algorithm 2): with the round's aggregate x̄ (what FedAvg would return) and the
 * current global x, Δ = x̄ − x, m ← β₁m + (1 − β₁)Δ, and
 *
 * - FedAdagrad: v ← v + Δ²
 * - FedAdam:    v ← β₂v + (1 − β₂)Δ²
 * - FedYogi:    v ← v − (1 − β₂)Δ²·sign(v − Δ²)
 *
 * then x ← x + η·m / (√v + τ). The wrapper runs after the inner strategy has produced the
 * aggregate, so it works unchanged over plain, Paillier (key holder server or authority) and
 * secure aggregation: it needs only the decrypted aggregate, never a single worker's update.
 * With key holder "clients" the server never sees the aggregate, and the wrapper refuses.
 *
 * FedProx needs no server part: its proximal term lives in the client's loss
 * (`proximal-mu`, see src/fl/apps/nn.ts), and aggregation is FedAvg's.
 */

/** Which server optimizer. */
export type ServerOptimizer = 'fedavg' | 'fedadam' | 'fedyogi' | 'fedadagrad';

/** Hyper-parameters (Flower's defaults: η = 0.1, β₁ = 0.9, β₂ = 0.99, τ = 1e-9; Reddi et al. use τ = 1e-3 for Adam). */
export interface ServerOptSettings {
  readonly optimizer: Exclude<ServerOptimizer, 'fedavg'>;
  readonly eta?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly tau?: number;
}

/**
 * Wraps a FedAvg-family strategy with a server optimizer.
 *
 * @example
 * ```ts
 * const strategy = new ServerOptStrategy(new SecAggFedAvg(settings), { optimizer: 'fedadam', eta: 0.01 });
 * ```
 */
export class ServerOptStrategy implements Strategy {
  readonly name: string;
  readonly keyHolder: string;
  readonly #inner: Strategy;
  readonly #s: Required<ServerOptSettings>;
  #current: readonly NamedTensor[] | null = null;
  #m: Float64Array[] | null = null;
  #v: Float64Array[] | null = null;
  readonly beginFit?: (roundId: string, selected: number, specs: readonly TensorSpec[]) => SecAggRound;

  constructor(inner: Strategy, settings: ServerOptSettings) {
    if (inner.keyHolder === 'clients') {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${settings.optimizer} needs the aggregate at the server, but with key-holder "clients" only the workers can decrypt it; use key-holder server or authority, or secure aggregation`, { param: 'server-optimizer' });
    }
    this.#inner = inner;
    this.#s = { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9, ...settings };
    for (const [k, v, lo, hi] of [['server-learning-rate', this.#s.eta, 0, Infinity], ['beta1', this.#s.beta1, 0, 1], ['beta2', this.#s.beta2, 0, 1], ['tau', this.#s.tau, 0, Infinity]] as const) {
      if (!(v > lo && v < hi) && !(k.startsWith('beta') && v === 0)) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${k} is ${v}; expected a number in (${lo}, ${hi})`, { param: k });
    }
    this.name = `${inner.name}+${settings.optimizer}`;
    this.keyHolder = inner.keyHolder;
    if (inner.beginFit !== undefined) this.beginFit = inner.beginFit.bind(inner);
  }

  setup(): Promise<StrategyInfo> {
    return this.#inner.setup();
  }

  payload(model: GlobalModel): ModelPayload {
    // The server hands out the current global model before every fit round: remember it as x.
    if (model.kind === 'plain') this.#current = model.tensors;
    return this.#inner.payload(model);
  }

  checkFitResult(result: FitResult, specs: readonly TensorSpec[], param: string): unknown {
    return this.#inner.checkFitResult(result, specs, param);
  }

  async aggregateFit(round: number, results: readonly FitOutcome[], specs: readonly TensorSpec[], stages?: StageRunner): Promise<GlobalModel> {
    const agg = await this.#inner.aggregateFit(round, results, specs, stages);
    const x = this.#current;
    if (agg.kind !== 'plain' || x === null) return agg;
    const { eta, beta1, beta2, tau, optimizer } = this.#s;
    this.#m ??= x.map((t) => new Float64Array(t.values.length));
    this.#v ??= x.map((t) => new Float64Array(t.values.length));
    const next = agg.tensors.map((t, k) => {
      const cur = x[k]!.values;
      const m = this.#m![k]!;
      const v = this.#v![k]!;
      const out = new Float64Array(t.values.length);
      for (let i = 0; i < out.length; i++) {
        const d = t.values[i]! - cur[i]!;
        m[i] = beta1 * m[i]! + (1 - beta1) * d;
        const d2 = d * d;
        v[i] = optimizer === 'fedadagrad' ? v[i]! + d2 : optimizer === 'fedadam' ? beta2 * v[i]! + (1 - beta2) * d2 : v[i]! - (1 - beta2) * d2 * Math.sign(v[i]! - d2);
        out[i] = cur[i]! + (eta * m[i]!) / (Math.sqrt(v[i]!) + tau);
      }
      return { name: t.name, shape: [...t.shape], values: out };
    });
    this.#current = next;
    return { kind: 'plain', tensors: next };
  }

  plaintext(model: GlobalModel): readonly NamedTensor[] | null {
    return this.#inner.plaintext(model);
  }
}
