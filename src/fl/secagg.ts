import { create } from '@bufbuild/protobuf';
import { CipherMLError } from '../core/errors.ts';
import {
  SecAggClient,
  SecAggServer,
  checkThreshold,
  dequantizeSum,
  modulusBitsFor,
  quantize,
  secAggPlusDegree,
  type QuantizationSpec,
  type Roster,
  type SecAggMode,
  type SecAggParams,
  type UnmaskRequest,
} from '../secagg/index.ts';
import {
  SecAggRoundSchema,
  SecAggStageResultSchema,
  SecAggStageTaskSchema,
  type FitResult,
  type ModelPayload,
  type SecAggRound,
  type SecAggStageResult,
  type SecAggStageTask,
  type TensorSpec,
} from './gen/cipherml/fl/v1/fl_pb.ts';
import { flatten, parameterCount, unflatten, type NamedTensor } from './protocol.ts';
import { plainPayload, type FitOutcome, type GlobalModel, type StageRunner, type Strategy, type StrategyInfo } from './strategy.ts';

/**
 * Secure aggregation in the federated runtime (Bonawitz et al., CCS 2017, §4; MindSpore
 * Federated PW_ENCRYPT / STABLE_PW_ENCRYPT; Bell et al., CCS 2020 for SecAgg+).
 *
 * A secagg round is a fit round followed by up to three stages, each a task per client with its
 * own time window (cipher-time-window):
 *
 *   fit task (model, weight, SecAggRound) → FitResult.secagg_keys   stage 0, advertise keys
 *   roster                                → share boxes            stage 1 (skipped by stable-pw)
 *   inbox (stable-pw: roster)             → masked input           stage 2
 *   unmask request                        → key / seed shares      stage 3 (skipped by stable-pw)
 *
 * Invariants:
 * - a worker's parameters never leave it in the clear; it contributes
 *   q = quantize([w, w·θ]) ∈ Z_Q^{1+m} (Flower's weighted-FedAvg trick: the weight rides along,
 *   so the mean divides by the weights of the clients that actually survived);
 * - masks and sums live in Z_{2^k} with n·(Q − 1) < 2^k, so the masked sum never wraps;
 * - the server learns only Σ_{survivors} q and therefore only the aggregate model.
 */

/** Settings of {@link SecAggFedAvg} (the run config's secure-aggregation keys). */
export interface SecAggSettings {
  readonly mode: SecAggMode;
  readonly clippingRange: number;
  readonly quantizationRange: number;
  /** 2^k, or 0 for the smallest k that n·(Q − 1) cannot wrap. */
  readonly modulusRange: number;
  /** Shamir degree t; 0 picks ⌊h/2⌋ + 1 (⌊2h/3⌋ + 1 under collusion) for h share holders. */
  readonly threshold: number;
  /** Fraction of the selected clients that must complete each stage (at least t + 1). */
  readonly shareSecretsRatio: number;
  readonly stageTimeoutMs: number;
  /** SecAgg+ shares per client including its own; 0 picks secAggPlusDegree(n) + 1. */
  readonly numShares: number;
  readonly collusion: boolean;
  readonly onViolation: 'refuse' | 'warn';
}

/** What one secagg round reports (history.json, progress). */
export type SecAggRoundReport = {
  readonly mode: SecAggMode;
  readonly survivors: number;
  readonly dropped: readonly string[];
  readonly threshold: number;
  readonly modulusBits: number;
  /** Values the survivors clipped to [−c, c] before quantizing. */
  readonly clipped: number;
  readonly warning: string | null;
};

interface PreparedRound {
  readonly params: SecAggParams;
  readonly spec: QuantizationSpec;
  readonly minClients: number;
  readonly degree: number;
  readonly warning: string | null;
}

/** The decoded stage-0 answer of one worker. */
interface Advertised {
  readonly cPk: Uint8Array;
  readonly sPk: Uint8Array;
  readonly clipped: number;
}

function refuse(problem: string, param: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_PROTOCOL', problem, { param });
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Length-checked uint32 little-endian decoding of a masked vector. */
export function maskedFromWire(bytes: Uint8Array, length: number, param: string): Uint32Array {
  if (bytes.length !== length * 4) {
    throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `masked input has ${bytes.length} bytes, expected ${length * 4} (${length} uint32 values)`, { param });
  }
  if (LITTLE_ENDIAN) return new Uint32Array(bytes.slice().buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Uint32Array.from({ length }, (_, i) => view.getUint32(i * 4, true));
}

/** uint32 values → little-endian bytes. */
export function maskedToWire(values: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(i * 4, v, true));
  return out;
}

/**
 * FedAvg by secure aggregation: no key holder, the server sees masked vectors and their sum.
 *
 * @example
 * ```ts
 * const strategy = new SecAggFedAvg({ mode: 'pw', clippingRange: 8, quantizationRange: 2 ** 22, modulusRange: 0, threshold: 0,
 *   shareSecretsRatio: 0.5, stageTimeoutMs: 60_000, numShares: 0, collusion: false, onViolation: 'refuse' });
 * const server = new FlServer({ settings, strategy });
 * ```
 */
export class SecAggFedAvg implements Strategy {
  readonly name = 'secagg';
  readonly keyHolder = 'none';
  readonly #s: SecAggSettings;
  readonly #rounds = new Map<string, PreparedRound>();

  constructor(settings: SecAggSettings) {
    this.#s = settings;
  }

  async setup(): Promise<StrategyInfo> {
    return { publicKey: new Uint8Array(0) };
  }

  payload(model: GlobalModel): ModelPayload {
    return plainPayload(model);
  }

  /**
   * Fixes the round's parameters for the n selected clients: k from n·(Q − 1), the threshold and
   * the SecAgg+ degree, checked against MindSpore's rules before any client does work.
   */
  beginFit(roundId: string, selected: number, specs: readonly TensorSpec[]): SecAggRound {
    const s = this.#s;
    const spec: QuantizationSpec = { clippingRange: s.clippingRange, quantizationRange: s.quantizationRange };
    const length = 1 + parameterCount(specs);
    const needBits = modulusBitsFor(selected, spec);
    let modulusBits = needBits;
    if (s.modulusRange !== 0) {
      modulusBits = Math.log2(s.modulusRange);
      if (modulusBits < needBits) {
        throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `modulus-range 2^${modulusBits} wraps for ${selected} clients × (Q − 1); it must be at least 2^${needBits}`, { param: 'modulus-range' });
      }
    }
    let degree = selected - 1;
    if (s.mode === 'secagg+') degree = Math.min(selected - 1, s.numShares === 0 ? secAggPlusDegree(selected) : s.numShares - 1);
    const holders = degree + 1;
    let threshold = 1;
    let warning: string | null = null;
    if (s.mode !== 'stable-pw') {
      threshold = s.threshold !== 0 ? s.threshold : Math.floor((s.collusion ? 2 * holders : holders) / (s.collusion ? 3 : 2)) + 1;
      if (threshold + 1 > holders) {
        throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${selected} clients are too few for secure aggregation with dropout recovery: threshold ${threshold} needs ${threshold + 1} share holders; select at least 3 clients or use secure-aggregation = "stable-pw"`, {
          param: 'reconstruct-secrets-threshold',
        });
      }
      warning = checkThreshold(threshold, holders, { collusion: s.collusion, onViolation: s.onViolation });
    }
    const minClients = s.mode === 'stable-pw' ? selected : Math.max(threshold + 1, Math.ceil(s.shareSecretsRatio * selected));
    const params: SecAggParams = { mode: s.mode, roundId, length, modulusBits, threshold };
    this.#rounds.clear();
    this.#rounds.set(roundId, { params, spec, minClients, degree, warning });
    return create(SecAggRoundSchema, { mode: s.mode, roundId, length, modulusBits, threshold, clippingRange: spec.clippingRange, quantizationRange: spec.quantizationRange });
  }

  checkFitResult(result: FitResult, _specs: readonly TensorSpec[], param: string): unknown {
    if (result.model !== undefined && result.model.kind.case !== undefined) {
      throw refuse('the secagg strategy accepts no parameters in a fit result (they would reveal the worker model); send the advertised keys', param);
    }
    const keys = result.secaggKeys;
    if (keys === undefined || keys.cPk.length !== 32 || keys.sPk.length !== 32) throw refuse('a secagg fit result must carry two 32-byte X25519 public keys', param);
    const clipped = result.metrics['clipped'] ?? 0;
    return { cPk: keys.cPk, sPk: keys.sPk, clipped: Number.isFinite(clipped) && clipped >= 0 ? clipped : 0 } satisfies Advertised;
  }

  async aggregateFit(_round: number, results: readonly FitOutcome[], specs: readonly TensorSpec[], stages?: StageRunner): Promise<GlobalModel> {
    if (stages === undefined) throw new CipherMLError('CIPHERML_E_PROTOCOL', 'secure aggregation needs a server that runs multi-stage rounds', { param: 'stages' });
    const roundId = stages.roundId;
    const prepared = this.#rounds.get(roundId);
    if (prepared === undefined) throw new CipherMLError('CIPHERML_E_PROTOCOL', `round "${roundId}" was not begun with beginFit`, { param: 'round' });
    const { params, spec, minClients, degree } = prepared;
    const server = new SecAggServer(params, { minClients, degree });
    const clippedBy = new Map<string, number>();
    for (const r of results) {
      const a = r.decoded as Advertised;
      server.receive({ stage: 'advertise', roundId, from: r.workerId, cPk: a.cPk, sPk: a.sPk });
      clippedBy.set(r.workerId, a.clipped);
    }
    const roster = server.closeAdvertise();
    const rosterTask = create(SecAggStageTaskSchema, { roundId, stage: { case: 'roster', value: rosterToWire(roster) } });
    const ids = roster.entries.map((e) => e.id);
    const window = this.#s.stageTimeoutMs;
    let maskedTasks: Map<string, SecAggStageTask>;
    if (params.mode === 'stable-pw') {
      maskedTasks = new Map(ids.map((id) => [id, rosterTask]));
    } else {
      await stages.run('share-keys', new Map(ids.map((id) => [id, rosterTask])), window, (from, res) => {
        if (res.stage.case !== 'shareKeys') throw refuse(`expected share boxes, got "${res.stage.case ?? 'nothing'}"`, 'stage');
        server.receive({ stage: 'share-keys', roundId: res.roundId, from, boxes: res.stage.value.boxes.map((b) => ({ to: b.peer, box: b.box })) });
      });
      const inboxes = server.closeShareKeys();
      maskedTasks = new Map(
        [...inboxes].map(([id, inbox]) => [id, create(SecAggStageTaskSchema, { roundId, stage: { case: 'inbox', value: { holders: [...inbox.holders], boxes: inbox.boxes.map((b) => ({ peer: b.from, box: b.box })) } } })]),
      );
    }
    await stages.run('masked-input', maskedTasks, window, (from, res) => {
      if (res.stage.case !== 'maskedInput') throw refuse(`expected a masked input, got "${res.stage.case ?? 'nothing'}"`, 'stage');
      server.receive({ stage: 'masked-input', roundId: res.roundId, from, masked: maskedFromWire(res.stage.value.masked, params.length, `masked input from ${from}`) });
    });
    const closed = server.closeMaskedInput();
    let sum: Uint32Array;
    let survivors: readonly string[];
    if ('sum' in closed) {
      ({ sum, survivors } = closed);
    } else {
      const request = create(SecAggStageTaskSchema, { roundId, stage: { case: 'unmask', value: { survivors: [...closed.survivors], dropped: [...closed.dropped] } } });
      await stages.run('unmask', new Map(closed.survivors.map((id) => [id, request])), window, (from, res) => {
        if (res.stage.case !== 'unmask') throw refuse(`expected unmasking shares, got "${res.stage.case ?? 'nothing'}"`, 'stage');
        const u = res.stage.value;
        server.receive({ stage: 'unmask', roundId: res.roundId, from, keyShares: u.keyShares.map((s) => ({ of: s.of, share: s.share })), seedShares: u.seedShares.map((s) => ({ of: s.of, share: s.share })) });
      });
      ({ sum, survivors } = server.finish());
    }
    const reals = dequantizeSum(sum, survivors.length, spec);
    const weightTotal = reals[0]!;
    if (!(weightTotal > 0)) throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `the survivors' FedAvg weights sum to ${weightTotal}`, { param: 'weight' });
    stages.report({
      mode: params.mode,
      survivors: survivors.length,
      dropped: ids.filter((id) => !survivors.includes(id)),
      threshold: params.threshold,
      modulusBits: params.modulusBits,
      clipped: survivors.reduce((a, id) => a + (clippedBy.get(id) ?? 0), 0),
      warning: prepared.warning,
    });
    this.#rounds.delete(roundId);
    return { kind: 'plain', tensors: unflatten(reals.subarray(1).map((v) => v / weightTotal), specs, 'aggregate') };
  }

  plaintext(model: GlobalModel): readonly NamedTensor[] | null {
    return model.kind === 'plain' ? model.tensors : null;
  }
}

/** Roster → wire. */
export function rosterToWire(r: Roster): { entries: { id: string; x: number; cPk: Uint8Array; sPk: Uint8Array }[]; degree: number; graphSeed: string } {
  return { entries: r.entries.map((e) => ({ id: e.id, x: e.x, cPk: e.cPk, sPk: e.sPk })), degree: r.degree, graphSeed: r.graphSeed };
}

/** The worker's side of one secagg round: its quantized input and protocol state. */
export interface SecAggWorkerRound {
  readonly roundId: string;
  readonly client: SecAggClient;
  readonly input: Uint32Array;
  readonly mode: SecAggMode;
  readonly clipped: number;
}

/**
 * Stage 0 on the worker: quantizes [w, w·θ] for the round and creates the protocol client.
 * Checks the server's parameters against the model so a hostile server cannot make the client
 * encode a different vector.
 */
export function beginWorkerRound(round: SecAggRound, workerId: string, parameters: readonly NamedTensor[], weight: number, rng?: () => number): SecAggWorkerRound {
  const mode = round.mode;
  if (mode !== 'pw' && mode !== 'stable-pw' && mode !== 'secagg+') throw refuse(`unknown secure-aggregation mode "${mode}"`, 'secagg.mode');
  const flat = flatten(parameters);
  if (round.length !== flat.length + 1) throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `the round expects ${round.length} values, this model has ${flat.length} + 1 weight`, { param: 'secagg.length' });
  if (!(weight > 0 && weight <= 1)) throw refuse(`FedAvg weight ${weight} is outside (0, 1]`, 'weight');
  const spec: QuantizationSpec = { clippingRange: round.clippingRange, quantizationRange: round.quantizationRange };
  const vector = new Float64Array(flat.length + 1);
  vector[0] = weight;
  for (let i = 0; i < flat.length; i++) vector[i + 1] = weight * flat[i]!;
  const { values, clipped } = quantize(vector, spec, rng);
  const client = new SecAggClient(workerId, { mode, roundId: round.roundId, length: round.length, modulusBits: round.modulusBits, threshold: round.threshold });
  return { roundId: round.roundId, client, input: values, mode, clipped };
}

/** Stages 1–3 on the worker: answers one stage task (refusals are typed errors). */
export function answerStage(state: SecAggWorkerRound, task: SecAggStageTask): SecAggStageResult {
  if (task.roundId !== state.roundId) throw refuse(`a stage task of round "${task.roundId}" while in round "${state.roundId}" (replayed or misrouted)`, 'roundId');
  const stage = task.stage;
  const roundId = state.roundId;
  switch (stage.case) {
    case 'roster': {
      const roster: Roster = { roundId, entries: stage.value.entries.map((e) => ({ id: e.id, x: e.x, cPk: e.cPk, sPk: e.sPk })), degree: stage.value.degree, graphSeed: stage.value.graphSeed };
      const msg = state.client.shareKeys(roster);
      if (state.mode === 'stable-pw') {
        const masked = state.client.maskedInput(state.input, { roundId, holders: [], boxes: [] });
        return create(SecAggStageResultSchema, { roundId, stage: { case: 'maskedInput', value: { masked: maskedToWire(masked.masked) } } });
      }
      return create(SecAggStageResultSchema, { roundId, stage: { case: 'shareKeys', value: { boxes: msg.boxes.map((b) => ({ peer: b.to, box: b.box })) } } });
    }
    case 'inbox': {
      const masked = state.client.maskedInput(state.input, { roundId, holders: [...stage.value.holders], boxes: stage.value.boxes.map((b) => ({ from: b.peer, box: b.box })) });
      return create(SecAggStageResultSchema, { roundId, stage: { case: 'maskedInput', value: { masked: maskedToWire(masked.masked) } } });
    }
    case 'unmask': {
      const request: UnmaskRequest = { roundId, survivors: [...stage.value.survivors], dropped: [...stage.value.dropped] };
      const msg = state.client.unmask(request);
      return create(SecAggStageResultSchema, { roundId, stage: { case: 'unmask', value: { keyShares: msg.keyShares.map((s) => ({ ...s })), seedShares: msg.seedShares.map((s) => ({ ...s })) } } });
    }
    default:
      throw refuse('empty secagg stage task', 'stage');
  }
}
