import { describe, expect, it } from 'vitest';
import { fuzzRest } from '../robust/fuzz-rest.ts';

describe('REST fuzz from the OpenAPI document, slow suite', () => {
  // The baseline is taken after both heavy-work threads ran a valid prediction and upload (their
  // SEAL heaps are a fixed cost per thread), so the bound is on growth the requests cause.
  it('10,000 requests: no 5xx, documented statuses and bodies, refusals change nothing, RSS below 256 MiB growth', { timeout: 3_600_000 }, async () => {
    const report = await fuzzRest({ numRuns: 10_000, rssBoundBytes: 256 << 20 });
    process.stderr.write(`${JSON.stringify(report)}\n`);
    expect(report.requests).toBe(10_000);
  });
});
