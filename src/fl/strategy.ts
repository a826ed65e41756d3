import { create } from '@bufbuild/protobuf';
import { defences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import type { Roster } from '../core/identity.ts';
import {
  PackedCiphertext,
  PackingLayout,
  decryptVector,
  deserializePacked,
  serializePacked,
  serializePublicKey,
  type PackingSpec,
  type PaillierPrivateKey,
  type PaillierPublicKey,
} from '../paillier/index.ts';
import { ModelPayloadSchema, type FitResult, type ModelPayload, type SecAggRound, type SecAggStageResult, type SecAggStageTask, type TensorSpec } from './gen/cipherml/fl/v1/fl_pb.ts';
import { assertSameSpecs, flatten, parameterCount, shapeSize, tensorsFromWire, tensorsToWire, unflatten, type NamedTensor } from './protocol.ts';
import { contributionKeyId, isSignedContribution, openContribution, verifyContribution } from './contribution.ts';

/**
 * Aggregation strategies in Flower's shape. The server owns sampling, rounds and evaluation;
 * a strategy decides what a global model looks like on the wire, checks each fit result the moment
 * it arrives, and aggregates a round's results. Secure aggregation and the enclave aggregator plug
 * in as further strategies.
 */

/** The global model as the server holds it. */
export type GlobalModel =
  | { readonly kind: 'plain'; readonly tensors: readonly NamedTensor[] }
  | { readonly kind: 'encrypted'; readonly packed: Uint8Array; readonly specs: readonly TensorSpec[]; readonly weightTotal: number };

/** One worker's accepted fit result, with its strategy-specific decoded form. */
export interface FitOutcome {
  readonly workerId: string;
  readonly numExamples: number;
  /** The FedAvg weight the worker was told to use (examples / selected examples). */
  readonly weight: number;
  readonly decoded: unknown;
  readonly metrics: Readonly<Record<string, number>>;
}

/** What workers learn at join time. */
export interface StrategyInfo {
  readonly publicKey: Uint8Array;
  readonly packing?: PackingSpec;
  /** The vouching party's signature of the key statement, and its identity id (identity mode). */
  readonly vouch?: KeyVouch;
}

/** A signature of the key statement (key holder ‖ public key) by the party that vouches for the key. */
export interface KeyVouch {
  readonly keySignature: Uint8Array;
  readonly keySignerId: string;
}

/**
 * One worker's Paillier update as it signed it (the bytes of a proto SignedContribution,
 * src/fl/contribution.ts), for the key authority's contribution floor.
 */
export interface SignedUpdate {
  readonly contribution: Uint8Array;
}

/** What a multi-stage round reports at its end (secure aggregation: survivors, dropouts, clipping). */
export type StageReport = Readonly<Record<string, unknown>>;

/**
 * The server's side of a multi-stage round, handed to {@link Strategy.aggregateFit}: sends one
 * task per named worker, waits until each answered or `timeoutMs` passed, and calls `accept` on
 * every answer as it arrives (a throw rejects that answer, and the worker hears the error).
 */
export interface StageRunner {
  /** The id the strategy was given in {@link Strategy.beginFit}. */
  readonly roundId: string;
  /** Resolves with the workers whose answers were accepted. */
  run(stage: string, tasks: ReadonlyMap<string, SecAggStageTask>, timeoutMs: number, accept: (workerId: string, result: SecAggStageResult) => void): Promise<ReadonlySet<string>>;
  /** Attaches the round's report to its history record. */
  report(report: StageReport): void;
}

/** A FedAvg-family strategy. */
export interface Strategy {
  readonly name: string;
  readonly keyHolder: string;
  /** Prepares keys etc. before the first round. */
  setup(): Promise<StrategyInfo>;
  /** The payload of fit/evaluate/finish tasks for a global model. */
  payload(model: GlobalModel): ModelPayload;
  /** Validates a fit result on arrival (shape, key, layout, ranges); returns its decoded form. */
  checkFitResult(result: FitResult, specs: readonly TensorSpec[], param: string): unknown;
  /**
   * Multi-stage strategies (secure aggregation): fixes the parameters of a round for the
   * `selected` workers; they travel in every fit task of the round.
   */
  beginFit?(roundId: string, selected: number, specs: readonly TensorSpec[]): SecAggRound;
  /** Aggregates a round's accepted results into the next global model, running further stages through `stages`. */
  aggregateFit(round: number, results: readonly FitOutcome[], specs: readonly TensorSpec[], stages?: StageRunner): Promise<GlobalModel>;
  /** The plaintext of a global model if this party may see it, else null. */
  plaintext(model: GlobalModel): readonly NamedTensor[] | null;
}

/** Zero tensors of the given specs. */
export function zeroModel(specs: readonly TensorSpec[]): NamedTensor[] {
  return specs.map((s) => ({ name: s.name, shape: [...s.shape], values: new Float64Array(shapeSize(s.shape)) }));
}

/** The wire payload of a global model as it is held (plain tensors or the encrypted vector). */
export function plainPayload(model: GlobalModel): ModelPayload {
  if (model.kind === 'plain') return create(ModelPayloadSchema, { kind: { case: 'plain', value: { tensors: tensorsToWire(model.tensors) } } });
  return create(ModelPayloadSchema, { kind: { case: 'encrypted', value: { packed: model.packed, specs: [...model.specs], weightTotal: model.weightTotal } } });
}

/**
 * FedAvg (McMahan et al., AISTATS 2017): the global model is the mean of the workers' models
 * weighted by their example counts. The server sees every worker's model.
 *
 * @example
 * ```ts
 * const server = new FlServer({ config, strategy: new PlainFedAvg() });
 * ```
 */
export class PlainFedAvg implements Strategy {
  readonly name = 'plain';
  readonly keyHolder = 'none';

  async setup(): Promise<StrategyInfo> {
    return { publicKey: new Uint8Array(0) };
  }

  payload(model: GlobalModel): ModelPayload {
    return plainPayload(model);
  }

  checkFitResult(result: FitResult, specs: readonly TensorSpec[], param: string): unknown {
    if (result.model?.kind.case !== 'plain') throw new CipherMLError('CIPHERML_E_PROTOCOL', 'the plain strategy expects plaintext parameters', { param });
    const tensors = tensorsFromWire(result.model.kind.value.tensors, param);
    assertSameSpecs(specs, tensors.map((t) => ({ name: t.name, shape: t.shape }) as TensorSpec), param);
    return tensors;
  }

  async aggregateFit(_round: number, results: readonly FitOutcome[], specs: readonly TensorSpec[]): Promise<GlobalModel> {
    const total = results.reduce((s, r) => s + r.numExamples, 0);
    const acc = zeroModel(specs);
    for (const r of results) {
      const w = r.numExamples / total;
      (r.decoded as NamedTensor[]).forEach((t, k) => t.values.forEach((v, i) => (acc[k]!.values[i]! += w * v)));
    }
    return { kind: 'plain', tensors: acc };
  }

  plaintext(model: GlobalModel): readonly NamedTensor[] | null {
    return model.kind === 'plain' ? model.tensors : null;
  }
}

/** Who can decrypt an aggregate in {@link PaillierFedAvg}. */
export type PaillierKeyHolder =
  | { readonly kind: 'server'; readonly privateKey: PaillierPrivateKey; readonly vouch?: KeyVouch }
  | {
      readonly kind: 'authority';
      readonly publicKey: PaillierPublicKey;
      readonly vouch?: KeyVouch;
      /** Identity mode: the pinned roster; every update must arrive as a contribution signed by a roster worker. */
      readonly roster?: Roster;
      decrypt(round: number, packed: Uint8Array, contributions?: readonly SignedUpdate[]): Promise<{ sums: Float64Array; contributions: number }>;
    }
  | { readonly kind: 'clients'; readonly publicKey: PaillierPublicKey; readonly vouch?: KeyVouch };

/**
 * FedAvg over Paillier (Intel HE LR; Flower FedAvgHE): each worker sends Enc(wₖ·θₖ), packed, with
 * wₖ = nₖ/Σn over the selected workers; the server multiplies the ciphertexts, which adds the
 * plaintexts, and never sees a worker's θₖ. The sum is decrypted by the server (key-holder
 * "server"), by the key authority on request ("authority"), or by the workers themselves
 * ("clients", the server then keeps only the encrypted global model); the model is the sum
 * divided by Σwₖ of the workers that answered.
 *
 * @example
 * ```ts
 * const { privateKey } = await generatePaillierKeyPair();
 * const strategy = new PaillierFedAvg({ kind: 'server', privateKey }, packing);
 * ```
 */
export class PaillierFedAvg implements Strategy {
  readonly name = 'paillier';
  readonly keyHolder: string;
  readonly #holder: PaillierKeyHolder;
  readonly #publicKey: PaillierPublicKey;
  readonly #packing: PackingSpec;
  readonly #layout: PackingLayout;
  readonly #keyId: string;
  /** The signed contribution each accepted update arrived as (for the authority's floor). */
  readonly #signed = new WeakMap<PackedCiphertext, { contribution: Uint8Array; workerId: string; round: number }>();

  constructor(holder: PaillierKeyHolder, packing: PackingSpec) {
    this.#holder = holder;
    this.keyHolder = holder.kind;
    this.#publicKey = holder.kind === 'server' ? holder.privateKey.publicKey : holder.publicKey;
    this.#packing = packing;
    this.#layout = PackingLayout.forKey(this.#publicKey, packing);
    this.#keyId = contributionKeyId(this.#publicKey);
  }

  get publicKey(): PaillierPublicKey {
    return this.#publicKey;
  }

  async setup(): Promise<StrategyInfo> {
    return { publicKey: serializePublicKey(this.#publicKey), packing: this.#packing, ...(this.#holder.vouch === undefined ? {} : { vouch: this.#holder.vouch }) };
  }

  payload(model: GlobalModel): ModelPayload {
    return plainPayload(model);
  }

  checkFitResult(result: FitResult, specs: readonly TensorSpec[], param: string): unknown {
    if (result.model?.kind.case !== 'encrypted') {
      throw new CipherMLError('CIPHERML_E_PROTOCOL', 'the paillier strategy accepts only encrypted parameters (a plaintext update would reveal the worker model)', { param });
    }
    const enc = result.model.kind.value;
    assertSameSpecs(specs, enc.specs, param);
    const length = parameterCount(specs);
    const h = this.#holder;
    // Identity mode: the update is a signed contribution (the decryptor verifies the signature).
    const opened = isSignedContribution(enc.packed) ? openContribution(enc.packed, param) : null;
    if (h.kind === 'authority' && h.roster !== undefined && defences.signedUpdatesOnArrival) {
      // Refused on arrival, not only when the authority recomputes the product: an unsigned or
      // forged update never enters the round (its weight would skew the mean of the signed ones).
      if (opened === null) throw new CipherMLError('CIPHERML_E_UPDATE_UNSIGNED', `${param} is not a signed contribution; this server runs in identity mode and accepts only updates signed by a roster worker`, { param });
      verifyContribution(h.roster, opened, param);
    }
    if (opened !== null && opened.keyFingerprint !== this.#keyId) {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `${param} is signed under key ${opened.keyFingerprint.slice(0, 16)}…, this run's is ${this.#keyId.slice(0, 16)}…`, { param });
    }
    const packed = deserializePacked(this.#publicKey, opened?.packed ?? enc.packed, { length, layout: this.#layout, ...(h.kind === 'server' ? { privateKey: h.privateKey } : {}) });
    if (packed.contributions !== 1) {
      throw new CipherMLError('CIPHERML_E_PROTOCOL', `a worker update must hold 1 contribution, this one claims ${packed.contributions}`, { param });
    }
    if (opened !== null) this.#signed.set(packed, { contribution: enc.packed, workerId: opened.workerId, round: opened.round });
    return packed;
  }

  async aggregateFit(round: number, results: readonly FitOutcome[], specs: readonly TensorSpec[]): Promise<GlobalModel> {
    const sum = PackedCiphertext.sum(results.map((r) => r.decoded as PackedCiphertext));
    const weightTotal = results.reduce((s, r) => s + r.weight, 0);
    const h = this.#holder;
    if (h.kind === 'clients') return { kind: 'encrypted', packed: serializePacked(sum), specs: [...specs], weightTotal };
    const signed = (): SignedUpdate[] =>
      results.flatMap((r) => {
        const c = this.#signed.get(r.decoded as PackedCiphertext);
        if (c === undefined) return [];
        if (c.workerId !== r.workerId || c.round !== round) {
          throw new CipherMLError('CIPHERML_E_PROTOCOL', `the update of worker ${r.workerId} is signed as worker ${c.workerId}'s for round ${c.round}`, { param: `result from ${r.workerId}` });
        }
        return [{ contribution: c.contribution }];
      });
    let sums: Float64Array;
    try {
      sums = h.kind === 'server' ? await decryptVector(h.privateKey, sum) : (await h.decrypt(round, serializePacked(sum), signed())).sums;
    } catch (e) {
      // A carry or high bits in the sum: some worker's update was out of range; never apply it.
      if (e instanceof CipherMLError && e.code === 'CIPHERML_E_AGGREGATE_OUT_OF_RANGE') {
        throw new CipherMLError('CIPHERML_E_AGGREGATE_OUT_OF_RANGE', `round ${round}: ${e.problem}`, { param: 'aggregate', details: { round }, cause: e });
      }
      throw e;
    }
    return { kind: 'plain', tensors: unflatten(sums.map((v) => v / weightTotal), specs, 'aggregate') };
  }

  plaintext(model: GlobalModel): readonly NamedTensor[] | null {
    return model.kind === 'plain' ? model.tensors : null;
  }
}

/** Flattens a model for encryption, scaled by the worker's FedAvg weight. */
export function weightedFlat(tensors: readonly NamedTensor[], weight: number): Float64Array {
  return flatten(tensors).map((v) => v * weight);
}
