import { CipherMLError } from '../../core/errors.ts';
import type { ImageDataset } from '../../ml/idx.ts';
import type { Tf } from '../../ml/nn/engine.ts';
import { initParameters, type ModelSpec } from '../../ml/nn/models.ts';
import { Network } from '../../ml/nn/network.ts';
import type { NamedTensor } from '../protocol.ts';
import type { EvalMetrics } from '../server.ts';
import type { FlClient } from '../worker.ts';

/**
 * Federated neural networks (LeNet-5, the small CNN, the MLP or any {@link ModelSpec}) behind
 * the runtime's model-agnostic {@link FlClient}: the global model arrives as named float64
 * tensors, is trained on the engine in float32, and leaves as named float64 tensors.
 */

/** Local hyper-parameter defaults (the server's fit config overrides the shared keys per round). */
export interface NnDefaults {
  readonly localEpochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** SGD momentum (0: plain SGD). */
  readonly momentum: number;
  /** FedProx μ (0: FedAvg). A fit-config key `proximal-mu` overrides it. */
  readonly proximalMu: number;
  readonly seed: number;
}

function num(config: Readonly<Record<string, string>>, key: string, fallback: number): number {
  const raw = config[key];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `fit config "${key}" is ${JSON.stringify(raw)}, not a number ≥ 0`, { param: key });
  return v;
}

/** Named float64 tensors of the network. */
export function toNamed(net: Network): NamedTensor[] {
  return net.getParameters().map((p) => ({ name: p.name, shape: [...p.shape], values: Float64Array.from(p.values) }));
}

/**
 * A federated client that trains `spec` on `data`.
 *
 * @example
 * ```ts
 * const { tf } = await loadEngine();
 * const client = nnClient(tf, MODELS.lenet5, mine, { localEpochs: 1, batchSize: 32, learningRate: 0.05, momentum: 0, proximalMu: 0, seed: 1 });
 * await runWorker({ workerId: '1', token, client, transport });
 * ```
 */
export function nnClient(tf: Tf, spec: ModelSpec, data: ImageDataset, defaults: NnDefaults): FlClient {
  if (data.count === 0) throw new CipherMLError('CIPHERML_E_PARTITION_INVALID', 'this client holds no training data', { param: 'train-set' });
  const net = new Network(tf, spec, initParameters(spec, defaults.seed));
  return {
    numExamples: () => data.count,
    getParameters: () => toNamed(net),
    fit: async (params, config) => {
      net.setParameters(params, 'global model');
      const round = num(config, 'round', 1);
      const { loss } = net.train(data, {
        epochs: num(config, 'local-epochs', defaults.localEpochs),
        batchSize: num(config, 'batch-size', defaults.batchSize),
        learningRate: num(config, 'learning-rate', defaults.learningRate),
        momentum: num(config, 'momentum', defaults.momentum),
        proximalMu: num(config, 'proximal-mu', defaults.proximalMu),
        seed: defaults.seed * 1000 + round,
      });
      return { parameters: toNamed(net), numExamples: data.count, metrics: { loss } };
    },
    evaluate: async (params) => {
      net.setParameters(params, 'global model');
      const e = net.evaluate(data);
      return { loss: e.loss, numExamples: e.count, metrics: { accuracy: e.accuracy } };
    },
  };
}

/**
 * Server-side test-set evaluation of a global model.
 *
 * @example
 * ```ts
 * const evaluate = nnEvaluator(tf, MODELS.lenet5, test);
 * new FlServer({ settings, strategy, evaluate });
 * ```
 */
export function nnEvaluator(tf: Tf, spec: ModelSpec, test: ImageDataset): (tensors: readonly NamedTensor[]) => EvalMetrics {
  const net = new Network(tf, spec, initParameters(spec, 0));
  return (tensors) => {
    net.setParameters(tensors, 'global model');
    const e = net.evaluate(test);
    return { loss: e.loss, accuracy: e.accuracy, count: e.count };
  };
}

/**
 * The initial global model the server hands out (every client starts from it).
 *
 * @example
 * ```ts
 * new FlServer({ settings, strategy, initialModel: initialModel(MODELS.lenet5, 42) });
 * ```
 */
export function initialModel(spec: ModelSpec, seed: number): NamedTensor[] {
  return initParameters(spec, seed).map((p) => ({ name: p.name, shape: [...p.shape], values: Float64Array.from(p.values) }));
}
