import { assertSigned, type Roster } from '../core/identity.ts';
import { CipherMLError } from '../core/errors.ts';
import { defences } from '../core/defences.ts';
import { PackedCiphertext, decryptVector, deserializePacked, type PackingSpec, type PaillierPrivateKey } from '../paillier/index.ts';
import type { FitResult, ModelPayload, TensorSpec } from '../fl/gen/cipherml/fl/v1/fl_pb.ts';
import { SIG_CONTEXT, contributionPayload } from '../fl/identity-auth.ts';
import type { NamedTensor } from '../fl/protocol.ts';
import { PaillierFedAvg, type FitOutcome, type GlobalModel, type SignedUpdate, type Strategy, type StrategyInfo } from '../fl/strategy.ts';

/**
 * Paillier FedAvg whose key lives in the (simulated) enclave: the same wire format and worker code
 * as key-holder "server", announced as key-holder "enclave". Decryption is guarded by the
 * contribution floor of the key authority (src/fl/authority.ts), evaluated inside the enclave: the
 * enclave decrypts only the product of ≥ min-fit contributions from distinct roster workers, each
 * signed by its worker over (round, worker id, SHA-256 of the packed bytes), and each round once.
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
  #lastRound = 0;

  constructor(options: EnclaveFedAvgOptions) {
    if (!(options.minFit >= 2)) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `the enclave decrypts aggregates of at least 2 contributions (one would be a worker's own update); min-fit-clients is ${options.minFit}`, { param: 'min-fit-clients' });
    this.#o = options;
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

  /** The floor: recomputes the product from the signed contributions themselves (the sum the caller passes is not trusted). */
  async #decrypt(round: number, contributions: readonly SignedUpdate[]): Promise<{ sums: Float64Array; contributions: number }> {
    const { privateKey, roster, minFit } = this.#o;
    if (round <= this.#lastRound) throw new CipherMLError('CIPHERML_E_CONTRIBUTION_FLOOR', `round ${round} is not after the last decrypted round ${this.#lastRound}: each round is decrypted once`, { param: 'round' });
    const seen = new Set<string>();
    const parts: PackedCiphertext[] = [];
    for (const [i, c] of contributions.entries()) {
      const what = `contribution ${i} (worker ${JSON.stringify(c.workerId)}) of round ${round}`;
      if (defences.contributionFloor) {
        if (seen.has(c.workerId)) throw new CipherMLError('CIPHERML_E_CONTRIBUTION_FLOOR', `${what}: worker ${JSON.stringify(c.workerId)} appears twice`, { param: 'contributions' });
        assertSigned(roster.require('worker', c.workerId, what), SIG_CONTEXT.contribution, contributionPayload(round, c.workerId, c.packed), c.signature, what);
      }
      const first = parts[0];
      const packed = deserializePacked(privateKey.publicKey, c.packed, { privateKey, ...(first === undefined ? {} : { length: first.length, layout: first.layout }) });
      if (packed.contributions !== 1) throw new CipherMLError('CIPHERML_E_CONTRIBUTION_FLOOR', `${what} claims ${packed.contributions} contributions; a worker signs exactly one`, { param: 'contributions' });
      seen.add(c.workerId);
      parts.push(packed);
    }
    if (parts.length < minFit) {
      throw new CipherMLError('CIPHERML_E_CONTRIBUTION_FLOOR', `round ${round}: ${parts.length} signed contribution(s); the enclave decrypts only aggregates of at least ${minFit} distinct roster workers`, { param: 'min-fit-clients' });
    }
    const sums = await decryptVector(privateKey, PackedCiphertext.sum(parts));
    this.#lastRound = round;
    return { sums, contributions: parts.length };
  }
}
