import type { Roster } from '../core/identity.ts';
import { CipherMLError } from '../core/errors.ts';
import { defences } from '../core/defences.ts';
import { decryptVector, type PackingSpec, type PaillierPrivateKey } from '../paillier/index.ts';
import type { FitResult, ModelPayload, TensorSpec } from '../fl/gen/cipherml/fl/v1/fl_pb.ts';
import { contributionKeyId, verifyContributionSet } from '../fl/contribution.ts';
import type { NamedTensor } from '../fl/protocol.ts';
import { PaillierFedAvg, type FitOutcome, type GlobalModel, type SignedUpdate, type Strategy, type StrategyInfo } from '../fl/strategy.ts';

/**
 * Paillier FedAvg whose key lives in the (simulated) enclave: the same wire format and worker code
 * as key-holder "server", announced as key-holder "enclave". Decryption is guarded by the
 * contribution floor of the key authority (src/fl/authority.ts), evaluated inside the enclave: the
 * enclave decrypts only the product of ≥ min-fit contributions from distinct roster workers, each
 * signed by its worker in the one contribution format (src/fl/contribution.ts: run, round, FedAvg
 * weight, example count, key id, SHA-256 of the packed bytes), and each round once.
 * An operator who injects Enc(0) updates to isolate one worker's update holds no worker's
 * identity key and so cannot make up the floor.
 */

/** Options of {@link EnclaveFedAvg}. */
export interface EnclaveFedAvgOptions {
  readonly privateKey: PaillierPrivateKey;
  readonly packing: PackingSpec;
  /** The workers whose signatures count toward the floor. */
  readonly roster: Roster;
  readonly minFit: number;
  /** The run the workers sign their contributions for (the run id bound into the attestation report). */
  readonly runId?: string;
  /** Appended to the announced key holder, e.g. "simulation: no hardware isolation". */
  readonly label?: string;
}

/**
 * @example
 * ```ts
 * const strategy = new EnclaveFedAvg({ privateKey, packing, roster, minFit: 2 });
 * ```
 */
export class EnclaveFedAvg implements Strategy {
  readonly name = 'paillier';
  readonly keyHolder: string;
  readonly #inner: PaillierFedAvg;
  readonly #o: EnclaveFedAvgOptions;
  readonly #keyId: string;
  #lastRound = 0;

  constructor(options: EnclaveFedAvgOptions) {
    if (!(options.minFit >= 2)) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `the enclave decrypts aggregates of at least 2 contributions (one would be a worker's own update); min-fit-clients is ${options.minFit}`, { param: 'min-fit-clients' });
    this.#o = options;
    this.#keyId = contributionKeyId(options.privateKey.publicKey);
    this.keyHolder = options.label === undefined ? 'enclave' : `enclave (${options.label})`;
    const publicKey = options.privateKey.publicKey;
    this.#inner = new PaillierFedAvg({ kind: 'authority', publicKey, decrypt: (round, _packed, contributions) => this.#decrypt(round, contributions ?? []) }, options.packing);
  }

  async setup(): Promise<StrategyInfo> {
    return this.#inner.setup();
  }

  payload(model: GlobalModel): ModelPayload {
    return this.#inner.payload(model);
  }

  checkFitResult(result: FitResult, specs: readonly TensorSpec[], param: string): unknown {
    return this.#inner.checkFitResult(result, specs, param);
  }

  aggregateFit(round: number, results: readonly FitOutcome[], specs: readonly TensorSpec[]): Promise<GlobalModel> {
    return this.#inner.aggregateFit(round, results, specs);
  }

  plaintext(model: GlobalModel): readonly NamedTensor[] | null {
    return this.#inner.plaintext(model);
  }

  /**
   * The floor: the product of ≥ min-fit distinct signed contributions of this run and round, under
   * this enclave's key, checked by the one verification the key authority and the threshold key
   * holders use (src/fl/contribution.ts verifyContributionSet); the sum the server passes is not
   * trusted. Each round is decrypted once.
   */
  async #decrypt(round: number, contributions: readonly SignedUpdate[]): Promise<{ sums: Float64Array; contributions: number }> {
    const { privateKey, roster, minFit } = this.#o;
    if (round <= this.#lastRound) throw new CipherMLError('CIPHERML_E_CONTRIBUTION_FLOOR', `round ${round} is not after the last decrypted round ${this.#lastRound}: each round is decrypted once`, { param: 'round' });
    const off = !defences.contributionFloor;
    const hooks = off ? { skipSignatures: true, skipMinContributions: true, skipDistinctWorkers: true, skipBinding: true, skipWeightCheck: true } : {};
    const set = verifyContributionSet(
      contributions.map((c) => c.contribution),
      { roster, runId: this.#o.runId ?? null, round, publicKey: privateKey.publicKey, keyId: this.#keyId, minContributions: minFit, code: 'CIPHERML_E_CONTRIBUTION_FLOOR', hooks },
    );
    const sums = await decryptVector(privateKey, set.product);
    this.#lastRound = round;
    return { sums, contributions: set.contributions.length };
  }
}
