import { describe, expect, it } from 'vitest';
import { simdArena } from './simd.ts';

describe('simdArena (WebAssembly SIMD add/sub mod 2^32)', () => {
  it('adds and subtracts word-wise with wrap-around, like Uint32Array stores', () => {
    const arena = simdArena();
    expect(arena).not.toBeNull(); // Node 24 has WebAssembly SIMD
    const a = arena!;
    const words = 4 * 1000;
    a.reserve(8 * words + 70_000); // grows past the first page
    const x = new Uint32Array(a.buffer(), 0, words);
    const y = new Uint32Array(a.buffer(), 4 * words, words);
    for (let i = 0; i < words; i++) {
      x[i] = (0xffffffff - i) >>> 0;
      y[i] = (i * 2654435761) >>> 0;
    }
    const expectedSum = Uint32Array.from(x, (v, i) => v + y[i]!);
    a.add(0, 4 * words, 4 * words);
    expect(new Uint32Array(a.buffer(), 0, words)).toEqual(expectedSum);
    a.sub(0, 4 * words, 4 * words);
    expect(Array.from(new Uint32Array(a.buffer(), 0, 8))).toEqual([0xffffffff, 0xfffffffe, 0xfffffffd, 0xfffffffc, 0xfffffffb, 0xfffffffa, 0xfffffff9, 0xfffffff8]);
  });

  it('touches only the bytes it is given', () => {
    const a = simdArena()!;
    const all = new Uint32Array(a.buffer(), 0, 12).fill(1);
    a.add(0, 16, 16); // words 0..3 += words 4..7
    expect(Array.from(new Uint32Array(a.buffer(), 0, 12))).toEqual([2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(all.length).toBe(12);
  });
});
