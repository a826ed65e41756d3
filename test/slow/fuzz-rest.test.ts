import { describe, expect, it } from 'vitest';
import { fuzzRest } from '../robust/fuzz-rest.ts';

describe('REST fuzz from the OpenAPI document, slow suite', () => {
  // The bound covers the two heavy-work threads' SEAL wasm heaps, which they allocate on their first
  // prediction during the run (a fixed cost): growth measured 257–269 MiB at 10,000 requests.
  it('10,000 requests: no 5xx, documented statuses and bodies, refusals change nothing, RSS below 384 MiB growth', { timeout: 3_600_000 }, async () => {
    const report = await fuzzRest({ numRuns: 10_000, rssBoundBytes: 384 << 20 });
    process.stderr.write(`${JSON.stringify(report)}\n`);
    expect(report.requests).toBe(10_000);
  });
});
