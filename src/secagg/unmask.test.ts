import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { WorkerPool } from '../core/worker-pool.ts';
import { generateX25519KeyPair } from './keys.ts';
import { PARALLEL_MASK_WORDS, applyMasks, type MaskJob } from './unmask.ts';

describe('mask removal on worker threads', () => {
  const pool = new WorkerPool(new URL('./mask-worker.ts', import.meta.url), 2);
  afterAll(() => pool.close());

  it('gives exactly the in-thread result, pairwise key agreement included (addition mod 2^32 commutes)', async () => {
    const length = 1 << 16;
    const a = generateX25519KeyPair();
    const jobs: MaskJob[] = Array.from({ length: PARALLEL_MASK_WORDS / length + 3 }, (_, i) =>
      i % 4 === 1 ? { privateKey: a.privateKey, peerPublicKey: generateX25519KeyPair().publicKey, info: 'pairwise-mask/r', sign: -1 } : { seed: randomBytes(32), sign: i % 3 === 0 ? -1 : 1 },
    );
    const start = Uint32Array.from({ length }, (_, i) => (i * 2654435761) >>> 0);
    const inThread = start.slice();
    await applyMasks(inThread, jobs, null);
    const threaded = start.slice();
    await applyMasks(threaded, jobs, pool);
    expect(Buffer.from(threaded.buffer).equals(Buffer.from(inThread.buffer))).toBe(true);
    expect(Buffer.from(threaded.buffer).equals(Buffer.from(start.buffer))).toBe(false);
  });
});
