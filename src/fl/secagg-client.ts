import { create } from '@bufbuild/protobuf';
import { CipherMLError } from '../core/errors.ts';
import type { Identity, Roster as IdentityRoster } from '../core/identity.ts';
import { DEFAULT_SECURITY_POLICY, SecAggClient, quantize, type QuantizationSpec, type SecAggMode, type SecurityPolicy } from '../secagg/index.ts';
import { SECAGG_TEST_HOOKS } from '../secagg/testing.ts';
import { SecAggStageResultSchema, type SecAggKeys, type SecAggRound, type SecAggStageResult, type SecAggStageTask, type Task } from './gen/cipherml/fl/v1/fl_pb.ts';
import { flatten, type NamedTensor } from './protocol.ts';
import { maskedToWire, requestFromWire, revealRequestFromWire, rosterFromWire, secAggResultBytes } from './secagg-wire.ts';

/**
 * The worker's secure-aggregation client mod (Flower keeps secure aggregation as one server
 * workflow plus one client mod; this is the mod, src/fl/secagg.ts the workflow): the worker loop
 * only hands it the fit task's round parameters and each stage task, and sends back what it
 * returns.
 *
 * Invariants:
 * - the worker's parameters never leave it in the clear: it contributes
 *   q = quantize([w, w·θ]) ∈ Z_Q^{1+m} masked in Z_{2^k};
 * - with an identity and pinned peers the client runs the actively secure variant and refuses a
 *   server that asks for less (unsigned roster, no consistency check);
 * - every refusal is a typed error the worker reports back as its task error.
 */

/** What a worker brings to secure aggregation: its identity, the peers it accepts, and its policy. */
export interface SecAggWorkerOptions {
  /** Long-term identity (role "worker", id = worker id): enables the actively secure variant. */
  readonly identity?: Identity;
  /** Pinned public identities of the other workers. */
  readonly peers?: IdentityRoster;
  /** The γ, δ, σ and collusion rule this worker checks the server's parameters against (default {@link DEFAULT_SECURITY_POLICY}). */
  readonly policy?: SecurityPolicy;
}

/** The worker's side of one secagg round: its quantized input and protocol state. */
export interface SecAggWorkerRound {
  readonly roundId: string;
  readonly client: SecAggClient;
  readonly input: Uint32Array;
  readonly mode: SecAggMode;
  readonly clipped: number;
}

function refuse(problem: string, param: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_PROTOCOL', problem, { param });
}

/**
 * Stage 0 on the worker: quantizes [w, w·θ] for the round and creates the protocol client.
 * Checks the server's parameters against the model so a hostile server cannot make the client
 * encode a different vector.
 *
 * @example
 * ```ts
 * const state = beginWorkerRound(fit.secagg!, 'w1', trained, fit.weight, { identity, peers });
 * const keys = advertiseKeys(state); // → FitResult.secagg_keys
 * ```
 */
export function beginWorkerRound(round: SecAggRound, workerId: string, parameters: readonly NamedTensor[], weight: number, options: SecAggWorkerOptions = {}, rng?: () => number): SecAggWorkerRound {
  const mode = round.mode;
  if (mode !== 'pw' && mode !== 'stable-pw' && mode !== 'secagg+') throw refuse(`unknown secure-aggregation mode "${mode}"`, 'secagg.mode');
  const flat = flatten(parameters);
  if (round.length !== flat.length + 1) throw new CipherMLError('CIPHERML_E_MODEL_MISMATCH', `the round expects ${round.length} values, this model has ${flat.length} + 1 weight`, { param: 'secagg.length' });
  if (!(weight > 0 && weight <= 1)) throw refuse(`FedAvg weight ${weight} is outside (0, 1]`, 'weight');
  if (options.identity !== undefined && mode === 'stable-pw') {
    throw new CipherMLError('CIPHERML_E_SECAGG_PARAMETER_REFUSED', 'this worker runs the actively secure variant, which has no stable-pw mode (no consistency check without an unmasking stage)', { param: 'secure-aggregation' });
  }
  const spec: QuantizationSpec = { clippingRange: round.clippingRange, quantizationRange: round.quantizationRange };
  const vector = new Float64Array(flat.length + 1);
  vector[0] = weight;
  for (let i = 0; i < flat.length; i++) vector[i + 1] = weight * flat[i]!;
  const { values, clipped } = quantize(vector, spec, rng);
  SECAGG_TEST_HOOKS.onQuantized?.(workerId, round.roundId, values);
  const client = new SecAggClient(workerId, { mode, roundId: round.roundId, length: round.length, modulusBits: round.modulusBits, threshold: round.threshold, ...(round.seedCommittee === 0 ? {} : { seedCommittee: round.seedCommittee }) }, {
    ...(options.identity === undefined ? {} : { identity: options.identity }),
    ...(options.peers === undefined ? {} : { peers: options.peers }),
    policy: options.policy ?? DEFAULT_SECURITY_POLICY,
  });
  return { roundId: round.roundId, client, input: values, mode, clipped };
}

/**
 * The advertised keys of stage 0 (signed in the active variant), for FitResult.secagg_keys.
 *
 * @example
 * ```ts
 * const keys = advertiseKeys(state); // { cPk, sPk, signature }
 * ```
 */
export function advertiseKeys(state: SecAggWorkerRound): Pick<SecAggKeys, 'cPk' | 'sPk' | 'signature' | 'commitment'> {
  const a = state.client.advertise();
  return { cPk: a.cPk, sPk: a.sPk, signature: a.signature, commitment: a.commitment ?? new Uint8Array(0) };
}

/** The tasks a worker can be told to drop out at: training, or a secure-aggregation stage. */
export type WorkerStage = 'fit' | 'reveal' | 'share-keys' | 'masked-input' | 'consistency' | 'unmask';

/**
 * The stage a task belongs to (for simulated dropouts and progress).
 *
 * @example
 * ```ts
 * stageOfTask(task, state); // 'masked-input'
 * ```
 */
export function stageOfTask(task: Task, round: SecAggWorkerRound | null): WorkerStage | null {
  const b = task.body;
  if (b.case === 'fit') return 'fit';
  if (b.case !== 'secagg') return null;
  const c = b.value.stage.case;
  // stable-pw answers the roster with its masked input: there is no share-keys stage.
  if (c === 'roster') return round?.mode === 'stable-pw' ? 'masked-input' : 'share-keys';
  if (c === 'inbox') return 'masked-input';
  if (c === 'consistency') return 'consistency';
  if (c === 'reveal') return 'reveal';
  return c === 'unmask' ? 'unmask' : null;
}

/**
 * Stages 1–3 on the worker: answers one stage task (refusals are typed errors). Returns the
 * answer and its payload size.
 *
 * @example
 * ```ts
 * const { result, bytesOut } = answerStage(state, task.body.value);
 * ```
 */
export function answerStage(state: SecAggWorkerRound, task: SecAggStageTask): { readonly result: SecAggStageResult; readonly bytesOut: number } {
  if (task.roundId !== state.roundId) throw refuse(`a stage task of round "${task.roundId}" while in round "${state.roundId}" (replayed or misrouted)`, 'roundId');
  const stage = task.stage;
  const roundId = state.roundId;
  let result: SecAggStageResult;
  switch (stage.case) {
    case 'roster': {
      const msg = state.client.shareKeys(rosterFromWire(roundId, stage.value));
      if (state.mode === 'stable-pw') {
        const masked = state.client.maskedInput(state.input, { roundId, holders: [], boxes: [] });
        result = create(SecAggStageResultSchema, { roundId, stage: { case: 'maskedInput', value: { masked: maskedToWire(masked.masked) } } });
      } else {
        result = create(SecAggStageResultSchema, { roundId, stage: { case: 'shareKeys', value: { boxes: msg.boxes.map((b) => ({ peer: b.to, box: b.box })) } } });
      }
      break;
    }
    case 'inbox': {
      const masked = state.client.maskedInput(state.input, { roundId, holders: [...stage.value.holders], boxes: stage.value.boxes.map((b) => ({ from: b.peer, box: b.box })) });
      result = create(SecAggStageResultSchema, { roundId, stage: { case: 'maskedInput', value: { masked: maskedToWire(masked.masked) } } });
      break;
    }
    case 'reveal': {
      const msg = state.client.reveal(revealRequestFromWire(roundId, stage.value));
      result = create(SecAggStageResultSchema, { roundId, stage: { case: 'reveal', value: { reveal: msg.reveal } } });
      break;
    }
    case 'consistency': {
      const msg = state.client.consistencyCheck(requestFromWire(roundId, stage.value));
      result = create(SecAggStageResultSchema, { roundId, stage: { case: 'consistency', value: { signature: msg.signature } } });
      break;
    }
    case 'unmask': {
      const msg = state.client.unmask(requestFromWire(roundId, stage.value));
      result = create(SecAggStageResultSchema, { roundId, stage: { case: 'unmask', value: { keyShares: msg.keyShares.map((s) => ({ ...s })), seedShares: msg.seedShares.map((s) => ({ ...s })) } } });
      break;
    }
    default:
      throw refuse('empty secagg stage task', 'stage');
  }
  return { result, bytesOut: secAggResultBytes(result) };
}
