import type { ConnectRouter } from '@connectrpc/connect';
import { CipherMLError } from '../core/errors.ts';
import type { Roster } from '../core/identity.ts';
import type { ThresholdKeyShare } from '../paillier/threshold.ts';
import { serializeDecryptionShares, serializeThresholdPublicKey } from '../paillier/threshold-serialize.ts';
import type { WorkerPool } from '../core/worker-pool.ts';
import { keyHolderPool } from '../paillier/vector.ts';
import { decryptionSharesInPool } from '../paillier/threshold-vector.ts';
import { ThresholdKeyHolderService } from './gen/cipherml/fl/v1/threshold_pb.ts';
import { checkProtocolVersion, toConnectError } from './protocol.ts';
import { productDigest, verifyContributionSet, type ContributionSetHooks } from './contribution.ts';

/**
 * A threshold key holder (key-holder "threshold"): keeps one share of the threshold Paillier key
 * and answers the aggregating server with decryption shares of a round's aggregate, never of
 * anything else.
 *
 * Before producing a share the holder checks, in this order, and refuses with
 * CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED (or the signature/identity error) otherwise:
 * 1. the request's run id is the run this holder serves (the first one it saw);
 * 2. the round is later than every round it already decrypted, or it is that last round and the
 *    product is the very aggregate it decrypted then (one aggregate per round, so the server
 *    cannot difference two subsets of one round; the same aggregate again, as a server retrying
 *    after a lost answer or a failed worker thread asks, yields the same shares and nothing new);
 * 3. the contributions pass verifyContributionSet (src/fl/contribution.ts, the check the key
 *    authority makes too): at least `minContributions` of distinct roster workers, each signed
 *    for this run, round and threshold key, FedAvg weights proportional to the signed example
 *    counts and summing to at most 1, one contribution per packed vector.
 * It then recomputes the product of the contributions itself and decrypts only that product.
 * The server never sends a ciphertext to decrypt, so it cannot ask for one worker's update or
 * pad it with its own Enc(0).
 */

/** Internal test hooks: each disables one check, so the adversarial suite can show that check is what stops its attack. Never set outside tests. */
export interface HolderTestHooks extends ContributionSetHooks {
  readonly skipRoundCheck?: boolean;
  /** Makes this holder cheat: its decryption shares are of another value. */
  readonly corruptShares?: boolean;
}

/** Holder events for logs. */
export interface HolderEvent {
  readonly type: 'decrypted' | 'refused';
  readonly round: number;
  readonly detail: string;
}

/** Options of {@link ThresholdKeyHolder}. */
export interface ThresholdKeyHolderOptions {
  readonly share: ThresholdKeyShare;
  /** Pinned public identities of the workers whose contributions count. */
  readonly roster: Roster;
  /** Fewest distinct signed contributions per decrypted aggregate (the run's min-fit-clients). */
  readonly minContributions: number;
  readonly onEvent?: (e: HolderEvent) => void;
  /**
   * Worker threads that compute the decryption shares (default: this holder's own, keyHolderPool:
   * its key share never enters a thread that runs another party's work), so the holder's event
   * loop keeps answering while a large aggregate is being decrypted.
   */
  readonly pool?: WorkerPool;
  /** @internal */
  readonly testHooks?: HolderTestHooks;
}

function refused(problem: string, details: Record<string, unknown> = {}): CipherMLError {
  return new CipherMLError('CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED', problem, { param: 'contributions', details });
}

/**
 * @example
 * ```ts
 * const holder = new ThresholdKeyHolder({ share, roster, minContributions: 2 });
 * await startRpcServer({ address: '127.0.0.1:9101', routes: (r) => holder.routes(r), maxMessageBytes: 64 << 20 });
 * ```
 */
export class ThresholdKeyHolder {
  readonly #o: ThresholdKeyHolderOptions;
  readonly #publicKey: Uint8Array;
  #runId: string | null = null;
  #lastRound = 0;
  /** SHA-256 of the product decrypted in `#lastRound` (hex), null before the first. */
  #lastDigest: string | null = null;

  constructor(options: ThresholdKeyHolderOptions) {
    if (!Number.isInteger(options.minContributions) || options.minContributions < 2) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `must be an integer ≥ 2 (one contribution would be one worker's update), got ${String(options.minContributions)}`, { param: '--min-contributions' });
    }
    this.#o = options;
    this.#publicKey = serializeThresholdPublicKey(options.share.publicKey);
  }

  /** This holder's id. */
  get id(): number {
    return this.#o.share.id;
  }

  /** Routes of the ThresholdKeyHolderService. */
  routes(router: ConnectRouter): void {
    router.service(ThresholdKeyHolderService, {
      holderInfo: (req) => {
        try {
          checkProtocolVersion(req.protocolVersion);
          return { holderId: this.id, publicKey: this.#publicKey, minContributions: this.#o.minContributions };
        } catch (e) {
          throw toConnectError(e);
        }
      },
      decryptContributions: async (req) => {
        try {
          return await this.decrypt(req);
        } catch (e) {
          if (e instanceof CipherMLError) this.#o.onEvent?.({ type: 'refused', round: req.round, detail: e.message });
          throw toConnectError(e);
        }
      },
    });
  }

  /**
   * Checks a request and returns this holder's decryption shares of the product (see the class
   * comment). The checks run on the calling thread; the shares are computed on worker threads.
   * The run, round and aggregate are claimed before the shares are computed, so two concurrent
   * requests for one round pass check 2 only if they ask for the same aggregate.
   */
  async decrypt(req: { readonly protocolVersion: number; readonly runId: string; readonly round: number; readonly contributions: readonly { readonly contribution: Uint8Array }[] }): Promise<{ holderId: number; shares: Uint8Array; aggregateDigest: Uint8Array }> {
    checkProtocolVersion(req.protocolVersion);
    const hooks = this.#o.testHooks ?? {};
    const pk = this.#o.share.publicKey;
    if (this.#runId !== null && req.runId !== this.#runId) throw refused(`this key holder serves run ${this.#runId}, not ${JSON.stringify(req.runId)}`, { runId: req.runId });
    if (hooks.skipRoundCheck !== true && req.round < this.#lastRound) {
      throw refused(`round ${req.round} is before round ${this.#lastRound}, the last one this holder decrypted (one aggregate per round)`, { round: req.round, last: this.#lastRound });
    }
    const { contributions, product } = verifyContributionSet(
      req.contributions.map((c) => c.contribution),
      { roster: this.#o.roster, runId: req.runId, round: req.round, publicKey: pk.paillier, keyId: pk.fingerprint, minContributions: this.#o.minContributions, code: 'CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED', hooks },
    );
    const n = contributions.length;
    const seen = contributions.map((c) => c.workerId);
    const digest = productDigest(product);
    const digestHex = Buffer.from(digest).toString('hex');
    if (hooks.skipRoundCheck !== true && req.round === this.#lastRound && digestHex !== this.#lastDigest) {
      throw refused(`round ${req.round} was already decrypted for another aggregate (one aggregate per round; asking again for the same contributions is allowed)`, { round: req.round, last: this.#lastRound });
    }
    this.#runId ??= req.runId;
    if (req.round >= this.#lastRound) {
      this.#lastRound = req.round;
      this.#lastDigest = digestHex;
    }
    let shares = await decryptionSharesInPool(this.#o.share, product, this.#o.pool ?? keyHolderPool(this.#o.share));
    if (hooks.corruptShares === true) shares = shares.map((s) => ({ ...s, value: (s.value * s.value) % pk.paillier.nSquared }));
    this.#o.onEvent?.({ type: 'decrypted', round: req.round, detail: `decryption shares of the product of ${n} signed contributions (${seen.join(', ')}), ${product.values.length} ciphertext(s)` });
    return { holderId: this.id, shares: serializeDecryptionShares(pk, shares), aggregateDigest: digest };
  }
}
