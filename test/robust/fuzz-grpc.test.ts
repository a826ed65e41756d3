import { describe, expect, it } from 'vitest';
import { fuzzGrpc } from './fuzz-grpc.ts';

// 400 generated calls over every gRPC method in the default suite (long-polls make each call
// cost more than a REST request); the slow suite runs 10,000: test/slow.
describe('gRPC fuzz from the proto descriptors (real HTTP/2 on loopback)', () => {
  it('400 calls: typed refusals only, refused joins change nothing, retained heap within 32 MiB, RSS bounded', async () => {
    const report = await fuzzGrpc({ numRuns: 400, seed: 13, rssBoundBytes: 256 << 20 });
    expect(report.calls).toBe(400);
  });
});
