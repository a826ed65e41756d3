/**
 * mulberry32: a seeded 32-bit generator of uniform numbers in [0, 1), for reproducible sampling
 * (worker selection, calibration samples). Not for secrets: keys, masks and nonces come from
 * node:crypto.
 *
 * @example
 * ```ts
 * const next = mulberry32(42);
 * next(); // the same sequence for every run with seed 42
 * ```
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
