import { describe, expect, it } from 'vitest';
import { fuzzRest } from './fuzz-rest.ts';

// 1,000 generated requests over every REST route (the slow suite runs 10,000: test/slow).
describe('REST fuzz from the OpenAPI document (real HTTP on loopback)', () => {
  it('1,000 requests: no 5xx, documented statuses and bodies, refusals change nothing, retained heap within 32 MiB, RSS bounded', async () => {
    const report = await fuzzRest({ numRuns: 1000, seed: 13, rssBoundBytes: 256 << 20 });
    expect(report.requests).toBe(1000);
    expect(Object.keys(report.byStatus).every((s) => Number(s) < 500)).toBe(true);
  });
});
