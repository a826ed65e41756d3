import { createClient, type Transport } from '@connectrpc/connect';
import { CipherMLError } from '../core/errors.ts';
import type { Roster } from '../core/identity.ts';
import { PackedCiphertext, PackingLayout, deserializePacked, serializePublicKey, type PackingSpec } from '../paillier/index.ts';
import type { DecryptionShare, ThresholdPublicKey } from '../paillier/threshold.ts';
import { deserializeDecryptionShares } from '../paillier/threshold-serialize.ts';
import { combinePacked } from '../paillier/threshold-vector.ts';
import type { FitResult, ModelPayload, TensorSpec } from './gen/cipherml/fl/v1/fl_pb.ts';
import { ThresholdKeyHolderService } from './gen/cipherml/fl/v1/threshold_pb.ts';
import { PROTOCOL_VERSION, assertSameSpecs, fromRpcError, parameterCount, unflatten } from './protocol.ts';
import { plainPayload, type FitOutcome, type GlobalModel, type StageRunner, type Strategy, type StrategyInfo } from './strategy.ts';
import { openContribution, verifyContribution, type OpenedContribution } from './contribution.ts';

/**
 * Paillier FedAvg with key-holder "threshold": workers encrypt under a threshold Paillier key and
 * sign their updates; the server multiplies the ciphertexts, then presents the round's signed
 * contributions to the key holders (src/fl/threshold-holder.ts), verifies each holder's
 * decryption shares against its own product and combines any k of them. No single party — the
 * server included — can decrypt; the server learns the aggregate, as with key-holder "authority".
 */

/** One key holder the server talks to. */
export interface HolderEndpoint {
  /** For messages, e.g. its address. */
  readonly name: string;
  readonly transport: Transport;
}

/** What the server learned from the holders in one round (history record `threshold`). */
export interface ThresholdRoundReport {
  readonly used: readonly number[];
  /** Holders whose shares failed verification (cheating or faulty), by holder id. */
  readonly rejected: readonly number[];
  /** Holders that refused or were unreachable, with their error. */
  readonly failed: readonly { readonly holder: string; readonly code: string; readonly message: string }[];
}

/** Options of {@link ThresholdFedAvg}. */
export interface ThresholdFedAvgOptions {
  readonly publicKey: ThresholdPublicKey;
  readonly packing: PackingSpec;
  readonly holders: readonly HolderEndpoint[];
  /** Worker roster: when given, the server refuses unsigned contributions on arrival (the holders check anyway). */
  readonly roster?: Roster;
  readonly onRound?: (round: number, report: ThresholdRoundReport) => void;
  /** How long to wait for each holder's answer (default 300 s); a holder that does not answer in time counts as failed. */
  readonly holderTimeoutMs?: number;
}

interface Decoded {
  readonly contribution: Uint8Array;
  readonly opened: OpenedContribution;
  readonly packed: PackedCiphertext;
}

/**
 * @example
 * ```ts
 * const strategy = new ThresholdFedAvg({ publicKey, packing, holders: [{ name: 'h1', transport }] });
 * const server = new FlServer({ settings, strategy });
 * ```
 */
export class ThresholdFedAvg implements Strategy {
  readonly name = 'paillier';
  readonly keyHolder = 'threshold';
  readonly #o: ThresholdFedAvgOptions;
  readonly #layout: PackingLayout;

  constructor(options: ThresholdFedAvgOptions) {
    if (options.holders.length < options.publicKey.threshold) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${options.holders.length} key holder address(es) given, the ${options.publicKey.label} key needs at least ${options.publicKey.threshold}`, { param: 'threshold-holders' });
    }
    this.#o = options;
    this.#layout = PackingLayout.forKey(options.publicKey.paillier, options.packing);
  }

  async setup(): Promise<StrategyInfo> {
    return { publicKey: serializePublicKey(this.#o.publicKey.paillier), packing: this.#o.packing };
  }

  payload(model: GlobalModel): ModelPayload {
    return plainPayload(model);
  }

  checkFitResult(result: FitResult, specs: readonly TensorSpec[], param: string): unknown {
    if (result.model?.kind.case !== 'encrypted') throw new CipherMLError('CIPHERML_E_PROTOCOL', 'key-holder "threshold" accepts only encrypted, signed updates', { param });
    const enc = result.model.kind.value;
    assertSameSpecs(specs, enc.specs, param);
    const contribution = enc.packed;
    const opened = openContribution(contribution, param);
    if (opened.keyFingerprint !== this.#o.publicKey.fingerprint) {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `${param} is under threshold key ${opened.keyFingerprint.slice(0, 16)}…, this run's is ${this.#o.publicKey.fingerprint.slice(0, 16)}…`, { param });
    }
    if (this.#o.roster !== undefined) verifyContribution(this.#o.roster, opened, param);
    const packed = deserializePacked(this.#o.publicKey.paillier, opened.packed, { length: parameterCount(specs), layout: this.#layout });
    if (packed.contributions !== 1) throw new CipherMLError('CIPHERML_E_PROTOCOL', `a worker update must hold 1 contribution, this one claims ${packed.contributions}`, { param });
    return { contribution, opened, packed } satisfies Decoded;
  }

  async aggregateFit(round: number, results: readonly FitOutcome[], specs: readonly TensorSpec[], stages?: StageRunner): Promise<GlobalModel> {
    const decoded = results.map((r) => {
      const d = r.decoded as Decoded;
      if (d.opened.workerId !== r.workerId || d.opened.round !== round) {
        throw new CipherMLError('CIPHERML_E_PROTOCOL', `the update of worker ${r.workerId} is signed as worker ${d.opened.workerId}'s for round ${d.opened.round}`, { param: `result from ${r.workerId}` });
      }
      return d;
    });
    const runId = decoded[0]?.opened.runId ?? '';
    const sum = PackedCiphertext.sum(decoded.map((d) => d.packed));
    const request = { protocolVersion: PROTOCOL_VERSION, runId, round, contributions: decoded.map((d) => ({ contribution: d.contribution })) };
    const failed: { holder: string; code: string; message: string }[] = [];
    const answers = await Promise.all(
      this.#o.holders.map(async (h): Promise<DecryptionShare[] | null> => {
        try {
          const reply = await createClient(ThresholdKeyHolderService, h.transport).decryptContributions(request, { timeoutMs: this.#o.holderTimeoutMs ?? 300_000 });
          return deserializeDecryptionShares(this.#o.publicKey, reply.shares, sum.values.length, `decryption shares from ${h.name}`).shares;
        } catch (e) {
          const err = fromRpcError(e, `key holder ${h.name}`);
          failed.push({ holder: h.name, code: err.code, message: err.message });
          return null;
        }
      }),
    );
    const got = answers.filter((a): a is DecryptionShare[] => a !== null);
    let combined;
    try {
      combined = combinePacked(this.#o.publicKey, sum, got);
    } catch (e) {
      if (e instanceof CipherMLError && failed.length > 0) {
        throw new CipherMLError(e.code, `${e.problem}; key holders that refused or failed: ${failed.map((f) => `${f.holder} (${f.message})`).join('; ')}`, { param: 'threshold-holders', ...(e.details === undefined ? {} : { details: e.details }) });
      }
      throw e;
    }
    const report: ThresholdRoundReport = { used: combined.used, rejected: combined.rejected, failed };
    this.#o.onRound?.(round, report);
    stages?.report({ threshold: report });
    const weightTotal = results.reduce((s, r) => s + r.weight, 0);
    return { kind: 'plain', tensors: unflatten(combined.values.map((v) => v / weightTotal), specs, 'aggregate') };
  }

  plaintext(model: GlobalModel): ReturnType<Strategy['plaintext']> {
    return model.kind === 'plain' ? model.tensors : null;
  }
}
