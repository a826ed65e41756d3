import { afterAll, describe, expect, it } from 'vitest';
import { HeavyPool } from './heavy.ts';

describe('HeavyPool', () => {
  const pool = new HeavyPool({ threads: 1, perUser: 2 });
  afterAll(async () => pool.close());

  it('bounds each user, not the others, and frees the slot when a task ends', async () => {
    const bytes = new Uint8Array(8 << 20);
    const a1 = pool.run<{ sha256: string }>('alice', { kind: 'sha256', bytes });
    const a2 = pool.run<{ sha256: string }>('alice', { kind: 'sha256', bytes });
    await expect(pool.run('alice', { kind: 'sha256', bytes })).rejects.toMatchObject({ code: 'CIPHERML_E_SERVICE_BUSY' });
    const b = pool.run<{ sha256: string }>('bob', { kind: 'sha256', bytes: Uint8Array.of(1) });
    const [r1, r2, rb] = await Promise.all([a1, a2, b]);
    expect(r1.sha256).toBe(r2.sha256);
    expect(rb.sha256).toBe('4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a');
    await expect(pool.run('alice', { kind: 'sha256', bytes: Uint8Array.of(1) })).resolves.toEqual(rb);
  });

  it('turns a refused parse on the worker into the typed error', async () => {
    await expect(pool.run('carol', { kind: 'publicContext', bytes: Uint8Array.of(1, 2, 3), param: 'context/public' })).rejects.toMatchObject({ code: 'CIPHERML_E_FORMAT_TRUNCATED' });
  });
});
