import { defences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import { assertFiniteVector, assertIntegerInRange } from '../core/guards.ts';
import { FixedPointCodec, DEFAULT_FIXED_POINT, type FixedPointSpec } from '../core/fixed-point.ts';
import { bitLength } from '../core/bigmath/index.ts';
import type { PaillierPrivateKey, PaillierPublicKey, ObfuscationMode } from './keys.ts';
import { assertSameKey } from './ciphertext.ts';
import type { RandomizerStock } from './randomizers.ts';

/**
 * BatchCrypt-style packing (Zhang et al., USENIX ATC 2020, §4): many fixed-point values share
 * one Paillier plaintext, one per slot, so one encryption and one ciphertext addition serve
 * them all.
 *
 * Slot invariant: a value v (|v| ≤ 2^(valueBits−1) − 1) is stored as u = v + 2^(valueBits−1),
 * so u ∈ [1, 2^valueBits). A slot holding C contributions holds Σu < C·2^valueBits, which fits in
 * slotBits = valueBits + ⌈log2 maxContributions⌉ bits as long as C ≤ maxContributions; the
 * packed plaintext uses at most bitLength(n) − 1 bits, so it is < n and no slot wraps mod n.
 * The decoder subtracts C·2^(valueBits−1), which is why a vector carries its contribution count.
 */

/** What a packing needs: precision, range and how many contributions a slot must absorb. */
export interface PackingSpec extends FixedPointSpec {
  /** Most ciphertext vectors that may be summed into one before decryption. */
  readonly maxContributions: number;
}

/** Default: resolution 2^−16, |x| < 32768, headroom for 1,000 contributions (42-bit slots). */
export const DEFAULT_PACKING: PackingSpec = { ...DEFAULT_FIXED_POINT, maxContributions: 1000 };

/** A packing spec resolved against a key size. */
export class PackingLayout implements PackingSpec {
  readonly fractionalBits: number;
  readonly integerBits: number;
  readonly maxContributions: number;
  /** Sign + integer + fractional bits of one value. */
  readonly valueBits: number;
  /** Bits of one slot: valueBits + ⌈log2 maxContributions⌉. */
  readonly slotBits: number;
  /** Values per ciphertext: ⌊(bitLength(n) − 1)/slotBits⌋. */
  readonly slotsPerCiphertext: number;
  readonly keyBits: number;
  readonly codec: FixedPointCodec;
  readonly #offset: bigint;
  readonly #mask: bigint;

  constructor(keyBits: number, spec: PackingSpec = DEFAULT_PACKING) {
    this.codec = new FixedPointCodec(spec);
    assertIntegerInRange(spec.maxContributions, 'maxContributions', 1, 2 ** 30);
    this.fractionalBits = spec.fractionalBits;
    this.integerBits = spec.integerBits;
    this.maxContributions = spec.maxContributions;
    this.keyBits = keyBits;
    this.valueBits = spec.fractionalBits + spec.integerBits + 1;
    this.slotBits = this.valueBits + bitLength(BigInt(spec.maxContributions - 1));
    this.slotsPerCiphertext = Math.floor((keyBits - 1) / this.slotBits);
    if (this.slotsPerCiphertext < 1) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `a ${this.slotBits}-bit slot does not fit a ${keyBits}-bit key`, { param: 'packing' });
    }
    this.#offset = 1n << BigInt(this.valueBits - 1);
    this.#mask = (1n << BigInt(this.slotBits)) - 1n;
  }

  /** Layout for a public key. */
  static forKey(publicKey: PaillierPublicKey, spec: PackingSpec = DEFAULT_PACKING): PackingLayout {
    return new PackingLayout(publicKey.bits, spec);
  }

  /** Number of ciphertexts that `length` values need. */
  ciphertextsFor(length: number): number {
    return Math.ceil(length / this.slotsPerCiphertext);
  }

  /** True when both layouts pack identically. */
  equals(other: PackingLayout): boolean {
    return other.fractionalBits === this.fractionalBits && other.integerBits === this.integerBits && other.maxContributions === this.maxContributions && other.keyBits === this.keyBits;
  }

  /** Describes the layout for errors, headers and `--json` output. */
  toJSON(): { fractionalBits: number; integerBits: number; maxContributions: number; slotBits: number; slotsPerCiphertext: number } {
    return { fractionalBits: this.fractionalBits, integerBits: this.integerBits, maxContributions: this.maxContributions, slotBits: this.slotBits, slotsPerCiphertext: this.slotsPerCiphertext };
  }

  /**
   * Packs reals into plaintexts; value i goes to ciphertext ⌊i/s⌋, slot i mod s (slot 0 lowest).
   *
   * @example
   * ```ts
   * const layout = PackingLayout.forKey(publicKey);
   * const plaintexts = layout.pack([0.5, -1.25, 3]);
   * ```
   */
  pack(values: ArrayLike<number>, param = 'values'): bigint[] {
    assertFiniteVector(values, param);
    const s = this.slotsPerCiphertext;
    const shift = BigInt(this.slotBits);
    const out: bigint[] = [];
    for (let start = 0; start < values.length; start += s) {
      let acc = 0n;
      for (let i = Math.min(start + s, values.length) - 1; i >= start; i--) {
        acc = (acc << shift) | (this.codec.encode(values[i]!, `${param}[${i}]`) + this.#offset);
      }
      out.push(acc);
    }
    return out;
  }

  /**
   * Unpacks `length` slot sums holding `contributions` contributions each into real sums.
   *
   * Range invariant (checked): an honest slot sum of C contributions lies in [C, C·(2^valueBits − 1)]
   * and the bits above the last used slot are zero. A dishonest contributor that wrote an
   * out-of-range value into a slot (a carry into its neighbour, or high bits) breaks it in the sum;
   * that is an AGGREGATE_OUT_OF_RANGE error naming the slot, never a silently wrong vector. A value
   * kept within range (bias) is not detectable here.
   */
  unpack(plaintexts: readonly bigint[], length: number, contributions: number): Float64Array {
    const out = new Float64Array(length);
    const s = this.slotsPerCiphertext;
    const shift = BigInt(this.slotBits);
    const c0 = BigInt(contributions);
    const bias = c0 * this.#offset;
    const hi = c0 * ((1n << BigInt(this.valueBits)) - 1n);
    const check = defences.slotRangeCheck;
    for (let c = 0; c < plaintexts.length; c++) {
      let p = plaintexts[c]!;
      const end = Math.min((c + 1) * s, length);
      for (let i = c * s; i < end; i++) {
        const slot = p & this.#mask;
        if (check && (slot < c0 || slot > hi)) {
          throw new CipherMLError('CIPHERML_E_AGGREGATE_OUT_OF_RANGE', `slot ${i} of a sum of ${contributions} contribution(s) holds ${slot}, outside [${c0}, ${hi}]`, { param: 'packed', details: { slot: i, contributions } });
        }
        out[i] = this.codec.decode(slot - bias);
        p >>= shift;
      }
      if (check && p !== 0n) {
        throw new CipherMLError('CIPHERML_E_AGGREGATE_OUT_OF_RANGE', `plaintext ${c} of a sum of ${contributions} contribution(s) has nonzero bits above its last slot`, { param: 'packed', details: { ciphertext: c, contributions } });
      }
    }
    return out;
  }
}

/** The JSON-friendly description of a packed vector's shape (carried in its header). */
export interface PackedHeader {
  readonly fingerprint: string;
  readonly length: number;
  readonly contributions: number;
  readonly layout: ReturnType<PackingLayout['toJSON']>;
}

/**
 * An encrypted vector of reals packed BatchCrypt-style. It knows its layout and how many
 * contributions its slots hold; adding past `maxContributions` is refused (SLOT_OVERFLOW)
 * instead of silently wrapping into the neighbour slot.
 *
 * @example
 * ```ts
 * const a = encryptPacked(publicKey, [1.5, -2]);
 * const b = encryptPacked(publicKey, [0.25, 4]);
 * decryptPacked(privateKey, a.add(b)); // Float64Array [1.75, 2]
 * ```
 */
export class PackedCiphertext {
  readonly publicKey: PaillierPublicKey;
  readonly layout: PackingLayout;
  readonly length: number;
  readonly contributions: number;
  readonly values: readonly bigint[];
  readonly obfuscated: boolean;

  constructor(publicKey: PaillierPublicKey, layout: PackingLayout, length: number, contributions: number, values: readonly bigint[], obfuscated: boolean) {
    if (values.length !== layout.ciphertextsFor(length)) {
      throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `${length} values need ${layout.ciphertextsFor(length)} ciphertexts, got ${values.length}`, { param: 'values' });
    }
    if (layout.keyBits !== publicKey.bits) {
      throw new CipherMLError('CIPHERML_E_LAYOUT_MISMATCH', `layout is for ${layout.keyBits}-bit keys, key has ${publicKey.bits} bits`, { param: 'layout' });
    }
    assertIntegerInRange(contributions, 'contributions', 1, layout.maxContributions);
    this.publicKey = publicKey;
    this.layout = layout;
    this.length = length;
    this.contributions = contributions;
    this.values = values;
    this.obfuscated = obfuscated;
  }

  get fingerprint(): string {
    return this.publicKey.fingerprint;
  }

  /** Shape description. */
  get header(): PackedHeader {
    return { fingerprint: this.fingerprint, length: this.length, contributions: this.contributions, layout: this.layout.toJSON() };
  }

  /** Slot-wise sum; contributions add up. */
  add(other: PackedCiphertext, param = 'other'): PackedCiphertext {
    this.assertCompatible(other, param);
    const total = this.contributions + other.contributions;
    if (total > this.layout.maxContributions) {
      throw new CipherMLError('CIPHERML_E_SLOT_OVERFLOW', `${this.contributions} + ${other.contributions} contributions exceed the layout's headroom of ${this.layout.maxContributions}`, {
        param,
        details: { contributions: total, maxContributions: this.layout.maxContributions },
      });
    }
    const n2 = this.publicKey.nSquared;
    const values = this.values.map((v, i) => (v * other.values[i]!) % n2);
    return new PackedCiphertext(this.publicKey, this.layout, this.length, total, values, this.obfuscated && other.obfuscated);
  }

  /**
   * Multiplies every slot by a positive integer k (e.g. an example count for weighted FedAvg):
   * it counts as k contributions, so headroom is checked the same way.
   */
  mulScalar(k: number): PackedCiphertext {
    assertIntegerInRange(k, 'k', 1, 2 ** 30);
    const total = this.contributions * k;
    if (total > this.layout.maxContributions) {
      throw new CipherMLError('CIPHERML_E_SLOT_OVERFLOW', `${this.contributions} contributions × ${k} exceed the layout's headroom of ${this.layout.maxContributions}`, {
        param: 'k',
        details: { contributions: total, maxContributions: this.layout.maxContributions },
      });
    }
    const { nSquared, backend } = this.publicKey;
    const e = BigInt(k);
    return new PackedCiphertext(this.publicKey, this.layout, this.length, total, this.values.map((v) => backend.powm(v, e, nSquared)), false);
  }

  /** Re-randomizes every ciphertext. */
  obfuscate(mode: ObfuscationMode = 'djn'): PackedCiphertext {
    const n2 = this.publicKey.nSquared;
    const rho = mode === 'djn' ? this.publicKey.randomizers(this.values.length) : this.values.map(() => this.publicKey.randomizer(mode));
    return new PackedCiphertext(this.publicKey, this.layout, this.length, this.contributions, this.values.map((v, i) => (v * rho[i]!) % n2), true);
  }

  /** This vector if obfuscated, else a re-randomized copy: what may leave the process. */
  forExport(): PackedCiphertext {
    return this.obfuscated ? this : this.obfuscate();
  }

  /** Throws unless `other` has this key, layout and length. */
  assertCompatible(other: PackedCiphertext, param: string): void {
    if (!(other instanceof PackedCiphertext)) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected a PackedCiphertext', { param });
    }
    if (other.publicKey.n !== this.publicKey.n) {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `operand is under key ${other.fingerprint}, this vector under ${this.fingerprint}`, {
        param,
        details: { expected: this.fingerprint, actual: other.fingerprint },
      });
    }
    if (!other.layout.equals(this.layout)) {
      throw new CipherMLError('CIPHERML_E_LAYOUT_MISMATCH', `operand layout ${JSON.stringify(other.layout.toJSON())} differs from ${JSON.stringify(this.layout.toJSON())}`, { param });
    }
    if (other.length !== this.length) {
      throw new CipherMLError('CIPHERML_E_SHAPE_MISMATCH', `operand has ${other.length} values, this vector ${this.length}`, {
        param,
        details: { expected: this.length, actual: other.length },
      });
    }
  }

  /** Slot-wise sum of one or more vectors. */
  static sum(items: readonly PackedCiphertext[]): PackedCiphertext {
    const first = items[0];
    if (first === undefined) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'cannot sum an empty list', { param: 'items' });
    let total = first.contributions;
    items.forEach((it, i) => {
      if (i > 0) {
        first.assertCompatible(it, `items[${i}]`);
        total += it.contributions;
      }
    });
    if (total > first.layout.maxContributions) {
      throw new CipherMLError('CIPHERML_E_SLOT_OVERFLOW', `${total} contributions exceed the layout's headroom of ${first.layout.maxContributions}`, {
        param: 'items',
        details: { contributions: total, maxContributions: first.layout.maxContributions },
      });
    }
    const n2 = first.publicKey.nSquared;
    const values = first.values.map((v0, j) => {
      let acc = v0;
      for (let i = 1; i < items.length; i++) acc = (acc * items[i]!.values[j]!) % n2;
      return acc;
    });
    return new PackedCiphertext(first.publicKey, first.layout, first.length, total, values, items.every((it) => it.obfuscated));
  }
}

/** Options of packed encryption. */
export interface EncryptPackedOptions {
  readonly packing?: PackingSpec;
  /** `true`/`'djn'` (default), `'classic'`, or `false` to defer (applied at export). */
  readonly obfuscate?: boolean | ObfuscationMode;
  /**
   * Precomputed DJN randomizers to use first (each once; see {@link RandomizerStock}); the rest
   * are made fresh. Only with DJN obfuscation (the default).
   */
  readonly randomizers?: RandomizerStock;
}

/** The randomizers of `count` ciphertexts: from the stock first, fresh for the rest (DJN only). */
export function randomizersFor(publicKey: PaillierPublicKey, count: number, options: EncryptPackedOptions): bigint[] | null {
  const obf = options.obfuscate ?? true;
  if (options.randomizers !== undefined && obf !== true && obf !== 'djn') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'precomputed randomizers are DJN randomizers: use them only with obfuscate "djn" (the default)', { param: 'randomizers' });
  }
  if (obf === false) return null;
  if (obf === 'classic') return Array.from({ length: count }, () => publicKey.randomizer('classic'));
  const pre = options.randomizers?.take(publicKey, count) ?? [];
  return pre.length === count ? pre : [...pre, ...publicKey.randomizers(count - pre.length)];
}

/**
 * Encrypts a vector of reals, packed, in this thread. See `encryptVector` for the worker-pool version.
 *
 * @example
 * ```ts
 * const enc = encryptPacked(publicKey, new Float64Array([0.1, 0.2, 0.3]));
 * enc.layout.slotsPerCiphertext; // 48 for a 2048-bit key and the default packing
 * ```
 */
export function encryptPacked(publicKey: PaillierPublicKey, values: ArrayLike<number>, options: EncryptPackedOptions = {}): PackedCiphertext {
  const layout = PackingLayout.forKey(publicKey, options.packing ?? DEFAULT_PACKING);
  const plaintexts = layout.pack(values);
  const obf = options.obfuscate ?? true;
  const n2 = publicKey.nSquared;
  const rho = randomizersFor(publicKey, plaintexts.length, options);
  const cts = plaintexts.map((m, i) => {
    const base = (1n + m * publicKey.n) % n2;
    return rho === null ? base : (base * rho[i]!) % n2;
  });
  return new PackedCiphertext(publicKey, layout, values.length, 1, cts, obf !== false);
}

/** Options of packed decryption. */
export interface DecryptPackedOptions {
  /** Divide each slot sum by the contribution count (FedAvg mean). Default false: sums. */
  readonly mean?: boolean;
}

/**
 * Decrypts a packed vector to the slot-wise sum of its contributions (or their mean), in this thread.
 *
 * @example
 * ```ts
 * const sum = decryptPacked(privateKey, PackedCiphertext.sum([a, b, c]));
 * ```
 */
export function decryptPacked(privateKey: PaillierPrivateKey, packed: PackedCiphertext, options: DecryptPackedOptions = {}): Float64Array {
  assertSameKey(privateKey, packed.fingerprint, 'packed');
  const plaintexts = packed.values.map((c, i) => {
    privateKey.assertCiphertext(c, `packed.values[${i}]`);
    return privateKey.decryptUnchecked(c);
  });
  return finishUnpack(packed, plaintexts, options);
}

/** Unpacks decrypted plaintexts of `packed` (shared by the in-thread and pooled paths). */
export function finishUnpack(packed: PackedCiphertext, plaintexts: readonly bigint[], options: DecryptPackedOptions): Float64Array {
  const out = packed.layout.unpack(plaintexts, packed.length, packed.contributions);
  if (options.mean === true) for (let i = 0; i < out.length; i++) out[i] = out[i]! / packed.contributions;
  return out;
}
