import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homoLrDemo } from './homo-lr-demo.ts';

// `cipherml demo homo-lr` in every Paillier key-holder mode at the real key size (2048 bits), in
// identity mode (each process signs with its own identity, pinned in the run folder's roster):
// separate processes over loopback gRPC, 30 rounds, accuracy ≥ 0.95 on the held-out set.


const demo = homoLrDemo;

describe('demo homo-lr, every Paillier key holder, 2048-bit keys, identity mode', () => {
  for (const keyHolder of ['server', 'authority', 'clients']) {
    it(`key-holder ${keyHolder}: accuracy ≥ 0.95, no development-mode warning, identities in the run folder`, async () => {
      const dir = await mkdtemp(join(tmpdir(), `cipherml-slow-${keyHolder}-`));
      try {
        const r = await demo(['--strategy', 'paillier', '--key-holder', keyHolder, '--key-bits', '2048', '--rounds', '30', '--run-dir', dir]);
        expect(r.code, r.stderr.slice(-2000)).toBe(0);
        expect(r.last).toMatchObject({ strategy: 'paillier', keyHolder, rounds: 30 });
        expect(r.last['accuracy']).toBeGreaterThanOrEqual(0.95);
        expect(r.stderr).not.toContain('insecure development mode');
        expect(r.stderr).toContain('identity mode');
        const roster = JSON.parse(await readFile(join(dir, 'identities', 'roster.json'), 'utf8')) as { role: string }[];
        expect(roster.map((p) => p.role).sort()).toEqual([...(keyHolder === 'server' ? [] : ['authority']), 'server', 'worker', 'worker'].sort());
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
