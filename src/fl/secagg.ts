import { create } from '@bufbuild/protobuf';
import { CipherMLError } from '../core/errors.ts';
import {
  SecAggServer,
  checkSecurityPolicy,
  checkThreshold,
  completeGraphThreshold,
  dequantizeSum,
  modulusBitsFor,
  secAggPlusParameters,
  seedCommitteeSize,
  type QuantizationSpec,
  type Roster,
  type SecAggMode,
  type SecAggParams,
  type SecurityPolicy,
  type UnmaskRequest,
  warmMaskPool,
} from '../secagg/index.ts';
import {
  SecAggRoundSchema,
  SecAggStageTaskSchema,
  type FitResult,
  type ModelPayload,
  type SecAggRound,
  type SecAggStageTask,
  type TensorSpec,
} from './gen/cipherml/fl/v1/fl_pb.ts';
import { parameterCount, unflatten, type NamedTensor } from './protocol.ts';
import { maskedFromWire, requestToWire, revealRequestToWire, rosterToWire } from './secagg-wire.ts';
import { plainPayload, type FitOutcome, type GlobalModel, type StageRunner, type Strategy, type StrategyInfo } from './strategy.ts';

export { maskedFromWire, maskedToWire, rosterToWire, secAggResultBytes } from './secagg-wire.ts';
export { answerStage, beginWorkerRound, advertiseKeys, stageOfTask } from './secagg-client.ts';
export type { SecAggWorkerOptions, SecAggWorkerRound, WorkerStage } from './secagg-client.ts';

/**
 * Secure aggregation in the federated runtime: the server workflow (Bonawitz et al., CCS 2017,
 * §4; MindSpore Federated PW_ENCRYPT / STABLE_PW_ENCRYPT; Bell et al., CCS 2020 for SecAgg+).
 * With src/fl/secagg-client.ts (the worker's client mod) this is the one home of the protocol in
 * the runtime: the server and worker loops only carry its messages.
 *
 * A secagg round is a fit round followed by up to four stages, each a task per client with its
 * own time window (cipher-time-window):
 *
 *   fit task (model, weight, SecAggRound) → FitResult.secagg_keys   stage 0, advertise keys (signed: active)
 *   roster                                → share boxes            stage 1 (skipped by stable-pw)
 *   inbox (stable-pw: roster)             → masked input           stage 2
 *   consistency request (U3)              → signature over U3      only in the actively secure variant
 *   unmask request (+ U4's signatures)    → key / seed shares      stage 3 (skipped by stable-pw)
 *
 * Invariants:
 * - a worker's parameters never leave it in the clear; it contributes
 *   q = quantize([w, w·θ]) ∈ Z_Q^{1+m} (Flower's weighted-FedAvg trick: the weight rides along,
 *   so the mean divides by the weights of the clients that actually survived);
 * - masks and sums live in Z_{2^k} with n·(Q − 1) < 2^k, so the masked sum never wraps;
 * - the server learns only Σ_{survivors} q and therefore only the aggregate model;
 * - the unmasked sum is range-checked (each entry ≤ |U3|·(Q − 1)) before it becomes a model.
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
  /** γ, δ, σ for the SecAgg+ degree and threshold (Bell et al. 2020); defaults 1/3, 0.1, 40. */
  readonly corruptFraction?: number;
  readonly dropoutRate?: number;
  readonly statisticalSecurity?: number;
}

/**
 * A malicious server for the adversarial suite (test/adversary): rewrites the round parameters
 * and each outgoing stage task before it is sent. Never set outside tests.
 */
export interface SecAggServerAdversary {
  readonly round?: (round: SecAggRound) => SecAggRound;
  /** `roster` is the whole roster U1 the server built (a malicious server knows it). */
  readonly task?: (stage: string, to: string, task: SecAggStageTask, roster: Roster) => SecAggStageTask;
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
  /** True when every client signed its keys: the actively secure variant ran. */
  readonly active: boolean;
  /** PRG masks the server expanded to unmask the sum. */
  readonly masks: number;
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
  readonly signature: Uint8Array;
  readonly commitment: Uint8Array;
  readonly clipped: number;
}

function refuse(problem: string, param: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_PROTOCOL', problem, { param });
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
  readonly #policy: SecurityPolicy;
  readonly #adversary: SecAggServerAdversary | undefined;
  readonly #rounds = new Map<string, PreparedRound>();

  constructor(settings: SecAggSettings, adversary?: SecAggServerAdversary) {
    this.#s = settings;
    this.#policy = { corruptFraction: settings.corruptFraction ?? 1 / 3, dropoutRate: settings.dropoutRate ?? 0.1, statisticalSecurity: settings.statisticalSecurity ?? 40, collusion: settings.collusion };
    checkSecurityPolicy(this.#policy);
    this.#adversary = adversary;
  }

  async setup(): Promise<StrategyInfo> {
    // The unmasking threads start with the server, not inside its first round.
    await warmMaskPool();
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
    let derivedThreshold = completeGraphThreshold(Math.max(selected, 1), this.#policy);
    if (s.mode === 'secagg+' && selected >= 3) {
      const derived = secAggPlusParameters(selected, this.#policy);
      degree = Math.min(selected - 1, s.numShares === 0 ? derived.degree : s.numShares - 1);
      derivedThreshold = derived.threshold;
    }
    const holders = degree + 1;
    let threshold = 1;
    let warning: string | null = null;
    if (s.mode !== 'stable-pw') {
      threshold = s.threshold !== 0 ? s.threshold : derivedThreshold;
      if (threshold + 1 > holders) {
        throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${selected} clients are too few for secure aggregation with dropout recovery: threshold ${threshold} needs ${threshold + 1} share holders; select at least 3 clients or use secure-aggregation = "stable-pw"`, {
          param: 'reconstruct-secrets-threshold',
        });
      }
      if (degree >= selected - 1) warning = checkThreshold(threshold, holders, { collusion: s.collusion, onViolation: s.onViolation });
    }
    const minClients = s.mode === 'stable-pw' ? selected : Math.max(threshold + 1, Math.ceil(s.shareSecretsRatio * selected));
    const seedCommittee = seedCommitteeSize(Math.max(selected, 1), this.#policy);
    const params: SecAggParams = { mode: s.mode, roundId, length, modulusBits, threshold, seedCommittee };
    this.#rounds.clear();
    this.#rounds.set(roundId, { params, spec, minClients, degree, warning });
    const round = create(SecAggRoundSchema, { mode: s.mode, roundId, length, modulusBits, threshold, clippingRange: spec.clippingRange, quantizationRange: spec.quantizationRange, seedCommittee });
    const sent = this.#adversary?.round?.(round) ?? round;
    // A malicious server runs its own side with the parameters it announced.
    if (sent !== round) this.#rounds.set(roundId, { params: { ...params, threshold: sent.threshold, modulusBits: sent.modulusBits, ...(sent.seedCommittee === 0 ? {} : { seedCommittee: sent.seedCommittee }) }, spec, minClients: Math.min(minClients, sent.threshold + 1), degree, warning });
    return sent;
  }

  checkFitResult(result: FitResult, _specs: readonly TensorSpec[], param: string): unknown {
    if (result.model !== undefined && result.model.kind.case !== undefined) {
      throw refuse('the secagg strategy accepts no parameters in a fit result (they would reveal the worker model); send the advertised keys', param);
    }
    const keys = result.secaggKeys;
    if (keys === undefined || keys.cPk.length !== 32 || keys.sPk.length !== 32) throw refuse('a secagg fit result must carry two 32-byte X25519 public keys', param);
    if (keys.signature.length !== 0 && keys.signature.length !== 64) throw refuse(`the advertised keys' signature must be 64 bytes (Ed25519) or absent, got ${keys.signature.length}`, param);
    if (keys.commitment.length !== 0 && keys.commitment.length !== 32) throw refuse(`the advertised graph-seed commitment must be 32 bytes or absent, got ${keys.commitment.length}`, param);
    const clipped = result.metrics['clipped'] ?? 0;
    return { cPk: keys.cPk, sPk: keys.sPk, signature: keys.signature, commitment: keys.commitment, clipped: Number.isFinite(clipped) && clipped >= 0 ? clipped : 0 } satisfies Advertised;
  }

  async aggregateFit(_round: number, results: readonly FitOutcome[], specs: readonly TensorSpec[], stages?: StageRunner): Promise<GlobalModel> {
    if (stages === undefined) throw new CipherMLError('CIPHERML_E_PROTOCOL', 'secure aggregation needs a server that runs multi-stage rounds', { param: 'stages' });
    const roundId = stages.roundId;
    const prepared = this.#rounds.get(roundId);
    if (prepared === undefined) throw new CipherMLError('CIPHERML_E_PROTOCOL', `round "${roundId}" was not begun with beginFit`, { param: 'round' });
    const { params, spec, minClients, degree } = prepared;
    const server = new SecAggServer(params, { minClients, degree, inputBound: spec.quantizationRange - 1 });
    const clippedBy = new Map<string, number>();
    for (const r of results) {
      const a = r.decoded as Advertised;
      server.receive({ stage: 'advertise', roundId, from: r.workerId, cPk: a.cPk, sPk: a.sPk, signature: a.signature, ...(a.commitment.length === 0 ? {} : { commitment: a.commitment }) });
      clippedBy.set(r.workerId, a.clipped);
    }
    let roster = server.closeAdvertise();
    const ids = roster.entries.map((e) => e.id);
    const window = this.#s.stageTimeoutMs;
    const tamper = this.#adversary?.task;
    const tasks = (stage: string, make: (id: string) => SecAggStageTask, to: readonly string[]) => new Map(to.map((id) => [id, tamper === undefined ? make(id) : tamper(stage, id, make(id), roster)]));
    if (server.stage === 'reveal') {
      // Actively secure SecAgg+: U1 is fixed by the roster root; the committee it selects reveals
      // the graph-seed contributions it committed to.
      const reveal = (id: string) => create(SecAggStageTaskSchema, { roundId, stage: { case: 'reveal', value: revealRequestToWire(server.revealFor(id)) } });
      await stages.run('reveal', tasks('reveal', reveal, server.committee), window, (from, res) => {
        if (res.stage.case !== 'reveal') throw refuse(`expected a graph-seed reveal, got "${res.stage.case ?? 'nothing'}"`, 'stage');
        server.receive({ stage: 'reveal', roundId: res.roundId, from, reveal: res.stage.value.reveal });
      });
      roster = server.closeReveal();
    }
    const full = create(SecAggStageTaskSchema, { roundId, stage: { case: 'roster', value: rosterToWire(roster) } });
    const rosterTask = (id: string) => {
      const view = server.rosterFor(id);
      return view === roster ? full : create(SecAggStageTaskSchema, { roundId, stage: { case: 'roster', value: rosterToWire(view) } });
    };
    let maskedTasks: Map<string, SecAggStageTask>;
    if (params.mode === 'stable-pw') {
      maskedTasks = tasks('masked-input', rosterTask, ids);
    } else {
      await stages.run('share-keys', tasks('share-keys', rosterTask, ids), window, (from, res) => {
        if (res.stage.case !== 'shareKeys') throw refuse(`expected share boxes, got "${res.stage.case ?? 'nothing'}"`, 'stage');
        server.receive({ stage: 'share-keys', roundId: res.roundId, from, boxes: res.stage.value.boxes.map((b) => ({ to: b.peer, box: b.box })) });
      });
      const inboxes = server.closeShareKeys();
      maskedTasks = tasks(
        'masked-input',
        (id) => {
          const inbox = inboxes.get(id)!;
          return create(SecAggStageTaskSchema, { roundId, stage: { case: 'inbox', value: { holders: [...inbox.holders], boxes: inbox.boxes.map((b) => ({ peer: b.from, box: b.box })) } } });
        },
        [...inboxes.keys()],
      );
    }
    await stages.run('masked-input', maskedTasks, window, (from, res) => {
      if (res.stage.case !== 'maskedInput') throw refuse(`expected a masked input, got "${res.stage.case ?? 'nothing'}"`, 'stage');
      server.receive({ stage: 'masked-input', roundId: res.roundId, from, masked: maskedFromWire(res.stage.value.masked, params.length, `masked input from ${from}`) });
    });
    const closed = server.closeMaskedInput();
    let sum: Uint32Array;
    let survivors: readonly string[];
    let masks: number;
    if ('sum' in closed) {
      ({ sum, survivors, masks } = closed);
    } else {
      let request = closed;
      // One encoded task for every client of a full request; each its own view of a sparse one.
      const requestTasks = (stage: 'consistency' | 'unmask', req: UnmaskRequest) => {
        const whole = create(SecAggStageTaskSchema, { roundId, stage: { case: stage, value: requestToWire(req) } });
        return (id: string) => {
          const mine = server.requestFor(id, req);
          return mine === req ? whole : create(SecAggStageTaskSchema, { roundId, stage: { case: stage, value: requestToWire(mine) } });
        };
      };
      if (server.active) {
        await stages.run('consistency', tasks('consistency', requestTasks('consistency', request), request.survivors), window, (from, res) => {
          if (res.stage.case !== 'consistency') throw refuse(`expected a consistency signature, got "${res.stage.case ?? 'nothing'}"`, 'stage');
          server.receive({ stage: 'consistency', roundId: res.roundId, from, signature: res.stage.value.signature });
        });
        request = server.closeConsistency();
      }
      const unmaskFor = requestTasks('unmask', request);
      const askedFrom = request.signatures === undefined ? request.survivors : request.signatures.map((s) => s.from);
      await stages.run('unmask', tasks('unmask', unmaskFor, askedFrom), window, (from, res) => {
        if (res.stage.case !== 'unmask') throw refuse(`expected unmasking shares, got "${res.stage.case ?? 'nothing'}"`, 'stage');
        const u = res.stage.value;
        server.receive({ stage: 'unmask', roundId: res.roundId, from, keyShares: u.keyShares.map((s) => ({ of: s.of, share: s.share })), seedShares: u.seedShares.map((s) => ({ of: s.of, share: s.share })) });
      });
      ({ sum, survivors, masks } = await server.finishParallel());
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
      active: server.active,
      masks,
    });
    this.#rounds.delete(roundId);
    return { kind: 'plain', tensors: unflatten(reals.subarray(1).map((v) => v / weightTotal), specs, 'aggregate') };
  }

  plaintext(model: GlobalModel): readonly NamedTensor[] | null {
    return model.kind === 'plain' ? model.tensors : null;
  }
}
