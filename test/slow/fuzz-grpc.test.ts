import { describe, expect, it } from 'vitest';
import { fuzzGrpc } from '../robust/fuzz-grpc.ts';

describe('gRPC fuzz from the proto descriptors, slow suite', () => {
  it('10,000 calls: typed refusals only, refused joins change nothing, RSS below 256 MiB growth', { timeout: 3_600_000 }, async () => {
    const report = await fuzzGrpc({ numRuns: 10_000, rssBoundBytes: 256 << 20 });
    process.stderr.write(`${JSON.stringify(report)}\n`);
    expect(report.calls).toBe(10_000);
  });
});
