import { CipherMLError } from '../core/errors.ts';
import { assertIntegerInRange } from '../core/guards.ts';
import type { PaillierPublicKey } from './keys.ts';

/**
 * Precomputed DJN randomizers (Damgård–Jurik–Nielsen 2010, §4 with s = 1): ρ = h_s^α mod n² does
 * not depend on the plaintext, so a party can compute the randomizers of its next encryption while
 * it waits (e.g. a federated worker while the server aggregates), and the encryption on the round's
 * critical path is one multiplication per ciphertext: c = (1 + m·n)·ρ mod n².
 *
 * Invariant: a randomizer is used at most once. Two ciphertexts sharing ρ reveal the difference of
 * their plaintexts (c₁/c₂ = (1 + (m₁ − m₂)·n) mod n²), so `take` removes what it returns and a
 * stock never hands out a value twice.
 */
export class RandomizerStock {
  /** Fingerprint of the key the randomizers belong to. */
  readonly fingerprint: string;
  #values: bigint[];

  constructor(publicKey: PaillierPublicKey, values: readonly bigint[]) {
    this.fingerprint = publicKey.fingerprint;
    this.#values = [...values];
  }

  /** Randomizers left. */
  get size(): number {
    return this.#values.length;
  }

  /**
   * Removes and returns up to `count` randomizers of `publicKey` (fewer when the stock runs short:
   * the caller makes the rest fresh).
   *
   * @example
   * ```ts
   * const rho = stock.take(publicKey, 100); // rho.length ≤ 100; never returned again
   * ```
   */
  take(publicKey: PaillierPublicKey, count: number): bigint[] {
    assertIntegerInRange(count, 'count', 0, 2 ** 31);
    if (publicKey.fingerprint !== this.fingerprint) {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the randomizers were made for key ${this.fingerprint}, the encryption uses ${publicKey.fingerprint}`, {
        param: 'randomizers',
        details: { expected: this.fingerprint, actual: publicKey.fingerprint },
      });
    }
    const out = this.#values.slice(0, count);
    this.#values = this.#values.slice(out.length);
    return out;
  }
}
