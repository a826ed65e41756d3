/**
 * `node:crypto` as the shared protocol code uses it on the browser path: `randomBytes` (from
 * `crypto.getRandomValues`, the platform CSPRNG) and a synchronous `createHash('sha256')` for the
 * key-set fingerprint (src/ckks/context.ts `fingerprintOf`; WebCrypto's digest is asynchronous).
 * SHA-256 as in FIPS 180-4 §6.2; checked against known-answer vectors in
 * web/src/platform/platform.test.ts.
 */
import { Bytes } from './buffer.ts';

const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Incremental SHA-256 (FIPS 180-4). */
class Sha256 {
  readonly #h = Uint32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  readonly #block = new Uint8Array(64);
  readonly #w = new Uint32Array(64);
  #fill = 0;
  #bytes = 0;

  update(data: string | Uint8Array): this {
    const b = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    this.#bytes += b.length;
    for (let i = 0; i < b.length; ) {
      const n = Math.min(64 - this.#fill, b.length - i);
      this.#block.set(b.subarray(i, i + n), this.#fill);
      this.#fill += n;
      i += n;
      if (this.#fill === 64) {
        this.#compress();
        this.#fill = 0;
      }
    }
    return this;
  }

  digest(): Bytes {
    const bits = this.#bytes * 8;
    this.update(Uint8Array.of(0x80));
    while (this.#fill !== 56) this.update(Uint8Array.of(0));
    const len = new Uint8Array(8);
    const v = new DataView(len.buffer);
    v.setUint32(0, Math.floor(bits / 2 ** 32));
    v.setUint32(4, bits >>> 0);
    this.update(len);
    const out = new Bytes(32);
    const o = new DataView(out.buffer, out.byteOffset, 32);
    this.#h.forEach((x, i) => o.setUint32(4 * i, x));
    return out;
  }

  #compress(): void {
    const w = this.#w;
    const d = new DataView(this.#block.buffer);
    for (let t = 0; t < 16; t++) w[t] = d.getUint32(4 * t);
    for (let t = 16; t < 64; t++) {
      const a = w[t - 15]!;
      const b = w[t - 2]!;
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) >>> 0;
    }
    const h = this.#h;
    let [a, b, c, e, f, g, hh] = [h[0]!, h[1]!, h[2]!, h[4]!, h[5]!, h[6]!, h[7]!];
    let dd = h[3]!;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[t]! + w[t]!) >>> 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (dd + t1) >>> 0;
      dd = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] = (h[0]! + a) >>> 0;
    h[1] = (h[1]! + b) >>> 0;
    h[2] = (h[2]! + c) >>> 0;
    h[3] = (h[3]! + dd) >>> 0;
    h[4] = (h[4]! + e) >>> 0;
    h[5] = (h[5]! + f) >>> 0;
    h[6] = (h[6]! + g) >>> 0;
    h[7] = (h[7]! + hh) >>> 0;
  }
}

export function createHash(algorithm: string): Sha256 {
  if (algorithm !== 'sha256') throw new Error(`createHash: only sha256 is available in the browser build, not ${algorithm}`);
  return new Sha256();
}

export function randomBytes(n: number): Bytes {
  const out = new Bytes(n);
  // getRandomValues fills at most 65,536 bytes per call.
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}
