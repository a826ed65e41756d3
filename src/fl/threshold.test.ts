import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { generateIdentity, publicIdentity, publicIdentityToJson, saveIdentity, Roster } from '../core/identity.ts';
import { isCipherMLError } from '../core/errors.ts';
import { cli, codeOf, codeOfAsync } from '../../test/helpers.ts';
import { resolveRunConfig } from './config.ts';
import { openContribution, sealContribution, verifyContribution } from './contribution.ts';
import { ThresholdKeyHolder } from './threshold-holder.ts';
import { parseThresholdLabel, verifyDecryptionShare } from '../paillier/threshold.ts';
import { dealFromSafePrimes } from '../paillier/threshold-dealer.ts';
import { PackedCiphertext, deserializePacked, encryptPacked, serializePacked } from '../paillier/index.ts';
import { createPaillierPool } from '../paillier/vector.ts';
import { deserializeDecryptionShares } from '../paillier/threshold-serialize.ts';
import { THRESHOLD_KAT } from '../../test/fixtures/threshold.ts';
import { PROTOCOL_VERSION } from './protocol.ts';

const FP = 'ab'.repeat(32);
const parseThresholdLabelCode = (label: string) => codeOf(() => parseThresholdLabel(label, '--threshold'));

function paramOfConfig(flags: Record<string, unknown>): string | undefined {
  try {
    resolveRunConfig({ flags });
  } catch (e) {
    return isCipherMLError(e, 'CIPHERML_E_CONFIG_INVALID') ? e.param : `other: ${String(e)}`;
  }
  return undefined;
}

describe('signed contributions', () => {
  const w1 = generateIdentity('worker', '1');
  const roster = new Roster([publicIdentity(w1)]);
  const fields = { runId: 'run-1', round: 3, weight: 0.5, numExamples: 120, workerId: '1', keyFingerprint: FP };

  it('round-trips and verifies; any flipped byte is refused with a typed error', () => {
    const packed = Uint8Array.from({ length: 40 }, (_, i) => i);
    const bytes = sealContribution(w1, fields, packed);
    const c = openContribution(bytes, 'c');
    expect(c).toMatchObject(fields);
    expect([...c.packed]).toEqual([...packed]);
    verifyContribution(roster, c, 'c');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const bad = Uint8Array.from(bytes);
        bad[at] = bad[at]! ^ x;
        try {
          verifyContribution(roster, openContribution(bad, 'c'), 'c');
        } catch (e) {
          return isCipherMLError(e);
        }
        return false;
      }),
      { numRuns: 200 },
    );
    for (let cut = 0; cut < bytes.length; cut += 7) expect(codeOf(() => openContribution(bytes.subarray(0, cut), 'c'))).toMatch(/^CIPHERML_E_FORMAT_/);
  });

  it('refuses to sign another worker\'s contribution, and an unknown signer is IDENTITY_UNKNOWN', () => {
    expect(codeOf(() => sealContribution(w1, { ...fields, workerId: '2' }, new Uint8Array(1)))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    const w2 = generateIdentity('worker', '2');
    const c = openContribution(sealContribution(w2, { ...fields, workerId: '2' }, new Uint8Array(1)), 'c');
    expect(codeOf(() => verifyContribution(roster, c, 'c'))).toBe('CIPHERML_E_IDENTITY_UNKNOWN');
  });
});

describe('key-holder threshold run config', () => {
  const full = { strategy: 'paillier', keyHolder: 'threshold', threshold: '2-of-3', thresholdPublicKey: 'k/threshold.pub', thresholdHolders: '127.0.0.1:1,127.0.0.1:2' };
  it('accepts a complete threshold config and names the missing or wrong key', () => {
    expect(paramOfConfig(full)).toBeUndefined();
    expect(paramOfConfig({ ...full, strategy: 'plain' })).toBe('strategy');
    expect(paramOfConfig({ ...full, threshold: '' })).toBe('threshold');
    expect(paramOfConfig({ ...full, threshold: 'two of three' })).toBe('threshold');
    expect(paramOfConfig({ ...full, thresholdPublicKey: '' })).toBe('threshold-public-key');
    expect(paramOfConfig({ ...full, thresholdHolders: '' })).toBe('threshold-holders');
    expect(paramOfConfig({ ...full, thresholdFingerprint: 'abc' })).toBe('threshold-fingerprint');
    expect(paramOfConfig({ strategy: 'paillier', threshold: '2-of-3' })).toBe('threshold');
  });
});

describe('threshold key holder options', () => {
  it('refuses a floor below 2 contributions (one contribution is one worker\'s update)', async () => {
    const dealt = dealFromSafePrimes(THRESHOLD_KAT.p, THRESHOLD_KAT.q, { holders: 3, threshold: 2 });
    const roster = new Roster([publicIdentity(generateIdentity('worker', '1'))]);
    for (const minContributions of [1, 0, 1.5]) {
      let param: unknown;
      try {
        new ThresholdKeyHolder({ share: dealt.shares[0]!, roster, minContributions });
      } catch (e) {
        param = isCipherMLError(e, 'CIPHERML_E_CONFIG_INVALID') ? e.param : e;
      }
      expect(param).toBe('--min-contributions');
    }
    // Proportional weights that sum past 1 are refused too (Σw ≤ 1).
    const workers = ['1', '2'].map((id) => generateIdentity('worker', id));
    const holder = new ThresholdKeyHolder({ share: dealt.shares[0]!, roster: new Roster(workers.map(publicIdentity)), minContributions: 2 });
    const packed = serializePacked(encryptPacked(dealt.publicKey.paillier, [1, 2]));
    const contributions = workers.map((w) => ({ contribution: sealContribution(w, { runId: 'r', round: 1, weight: 2, numExamples: 100, workerId: w.id, keyFingerprint: dealt.publicKey.fingerprint }, packed) }));
    expect(await codeOfAsync(() => holder.decrypt({ protocolVersion: PROTOCOL_VERSION, runId: 'r', round: 1, contributions }))).toBe('CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED');
    expect(parseThresholdLabelCode('4-of-3')).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(parseThresholdLabelCode('1-of-3')).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(parseThresholdLabelCode('2-of-3')).toBeUndefined();
  });
});

describe('threshold key holder responsiveness', () => {
  it('computes decryption shares on worker threads: the event loop keeps answering, and the shares verify', async () => {
    const dealt = dealFromSafePrimes(THRESHOLD_KAT.p, THRESHOLD_KAT.q, { holders: 3, threshold: 2 });
    const workers = ['1', '2'].map((id) => generateIdentity('worker', id));
    const pool = createPaillierPool(1);
    try {
      const holder = new ThresholdKeyHolder({ share: dealt.shares[0]!, roster: new Roster(workers.map(publicIdentity)), minContributions: 2, pool });
      // 24 ciphertexts per contribution: a few hundred ms of modular exponentiation.
      const values = Array.from({ length: 24 * 20 }, (_, i) => (i % 7) - 3);
      const packing = { fractionalBits: 16, integerBits: 15, maxContributions: 1000 };
      const contributions = workers.map((w) => ({ contribution: sealContribution(w, { runId: 'r', round: 1, weight: 0.5, numExamples: 10, workerId: w.id, keyFingerprint: dealt.publicKey.fingerprint }, serializePacked(encryptPacked(dealt.publicKey.paillier, values, { packing, obfuscate: false }))) }));
      // Event-loop ticks while the holder works: with shares on this thread there would be none.
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const t0 = performance.now();
      const reply = await holder.decrypt({ protocolVersion: PROTOCOL_VERSION, runId: 'r', round: 1, contributions });
      const ms = performance.now() - t0;
      clearInterval(timer);
      expect(ticks).toBeGreaterThanOrEqual(Math.floor(ms / 5 / 4));
      expect(ticks).toBeGreaterThan(3);
      const product = PackedCiphertext.sum(contributions.map((c) => deserializePacked(dealt.publicKey.paillier, openContribution(c.contribution, 'c').packed)));
      const { shares } = deserializeDecryptionShares(dealt.publicKey, reply.shares, product.values.length);
      expect(shares.length).toBeGreaterThan(8);
      expect(shares.every((sh, i) => verifyDecryptionShare(dealt.publicKey, product.values[i]!, sh))).toBe(true);
    } finally {
      await pool.close();
    }
  });
});

describe('threshold key holder retries', () => {
  it('answers the same aggregate again after a failed worker thread, and still refuses another aggregate of that round', async () => {
    const dealt = dealFromSafePrimes(THRESHOLD_KAT.p, THRESHOLD_KAT.q, { holders: 3, threshold: 2 });
    const workers = ['1', '2', '3'].map((id) => generateIdentity('worker', id));
    const pool = createPaillierPool(1);
    const run = pool.run.bind(pool);
    let failNext = true;
    pool.run = (<T>(task: Parameters<typeof run>[0]): Promise<T> => {
      if (!failNext) return run<T>(task);
      failNext = false;
      return Promise.reject(new Error('worker thread exited'));
    }) as typeof pool.run;
    try {
      const holder = new ThresholdKeyHolder({ share: dealt.shares[0]!, roster: new Roster(workers.map(publicIdentity)), minContributions: 2, pool });
      const seal = (w: (typeof workers)[number], round: number, values: number[]) => ({
        contribution: sealContribution(w, { runId: 'r', round, weight: 1 / 3, numExamples: 10, workerId: w.id, keyFingerprint: dealt.publicKey.fingerprint }, serializePacked(encryptPacked(dealt.publicKey.paillier, values))),
      });
      const ask = (round: number, contributions: { contribution: Uint8Array }[]) => holder.decrypt({ protocolVersion: PROTOCOL_VERSION, runId: 'r', round, contributions });
      const [a, b, c] = [[1, 2], [3, 4], [5, 6]].map((v, i) => seal(workers[i]!, 2, v));
      await expect(ask(2, [a!, b!])).rejects.toThrow('worker thread exited');
      const first = await ask(2, [a!, b!]);
      const again = await ask(2, [b!, a!]);
      expect(Buffer.from(again.aggregateDigest)).toEqual(Buffer.from(first.aggregateDigest));
      expect(await codeOfAsync(() => ask(2, [a!, b!, c!]))).toBe('CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED');
      expect(await codeOfAsync(() => ask(1, [1, 2].map((i) => seal(workers[i]!, 1, [0, 0]))))).toBe('CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED');
    } finally {
      await pool.close();
    }
  });
});

describe('threshold CLI', () => {
  it('deals a key, and the key holder refuses a wrong pin and a share file others can read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-threshold-cli-'));
    const r = await cli('paillier', 'threshold-keygen', '--holders', '3', '--threshold', '2', '--bits', '1024', '--out-dir', join(dir, 'keys'), '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { fingerprint: string; sharePaths: string[]; publicKeyPath: string };
    expect(out.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const w = generateIdentity('worker', '1');
    await saveIdentity(join(dir, 'w1.id'), w);
    await writeFile(join(dir, 'roster.json'), JSON.stringify([publicIdentityToJson(w)]));
    const holder = (...extra: string[]) => cli('key-holder', '--share', out.sharePaths[0]!, '--roster', join(dir, 'roster.json'), '--address', '127.0.0.1:0', '--json', ...extra);
    expect(JSON.parse((await holder('--min-contributions', '2', '--threshold-fingerprint', 'cd'.repeat(32))).stdout).error.code).toBe('CIPHERML_E_KEY_MISMATCH');
    expect(JSON.parse((await cli('key-holder', '--share', out.publicKeyPath, '--roster', join(dir, 'roster.json'), '--min-contributions', '2', '--json')).stdout).error.code).toBe('CIPHERML_E_KEY_FILE_INSECURE');
  });
});
