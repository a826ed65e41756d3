import { describe, expect, it } from 'vitest';
import { describeServerEvent } from './describe.ts';
import type { RoundRecord } from './server.ts';

const record = (secagg: RoundRecord['secagg']): RoundRecord => ({
  round: 3, attempts: 1, fitResults: 3, fitFailures: 0, trainLoss: 0.2, federatedLoss: null, federatedAccuracy: null, serverLoss: null, serverAccuracy: null, serverAuc: null, bytesIn: 2048, durationMs: 10, secagg,
});

describe('round lines', () => {
  it('name the threshold key holders used, rejected and silent; secure aggregation keeps its survivors line (its report has a numeric threshold)', () => {
    const th = describeServerEvent({ type: 'round-end', record: record({ threshold: { used: [3, 4], rejected: [1], failed: [{ holder: 'holder 2', code: 'CIPHERML_E_PEER_UNAVAILABLE', message: 'timeout' }] } }) });
    expect(th).toContain('decrypted with the shares of key holders 3, 4 (invalid shares from holder 1) (no answer from holder 2)');
    const sa = describeServerEvent({ type: 'round-end', record: record({ survivors: 3, dropped: [], clipped: 0, threshold: 2 }) });
    expect(sa).toContain('secure sum of 3 survivors (dropped: none; 0 values clipped)');
    expect(describeServerEvent({ type: 'round-end', record: record(null) })).toMatch(/^round 3: 3 updates \(0 failed\), 2\.0 KiB in/);
  });
});
