import { describe, expect, it } from 'vitest';
import { maskedFromWire } from '../../src/fl/secagg-wire.ts';
import { modulusBitsFor } from '../../src/secagg/quantize.ts';
import { Z_ALPHA_1E6, chiSquareCritical, chiSquareTopBits, findLeaks, runSecAgg, stageAnswers, type SecAggRunResult } from './harness-secagg.ts';

// The server is the adversary here (honest-but-curious and curious-only: it follows the protocol
// and keeps every byte it receives). Claim: no worker's update reaches it in any encoding, and
// each masked vector it receives is indistinguishable from uniform. Both checks run once against
// the deliberately broken build whose masks are disabled (SECAGG_TEST_HOOKS.disableMasks), and
// must fail there.

const WORKERS = 5;
const PARAMS = 4000;
const SPEC = { clippingRange: 8, quantizationRange: 2 ** 22 };
const BITS = modulusBitsFor(WORKERS, SPEC);
/** χ²(15) critical value at α = 10⁻⁶ (Wilson–Hilferty); family-wise over 5 vectors ≤ 5·10⁻⁶. */
const CRITICAL = chiSquareCritical(15, Z_ALPHA_1E6);

function maskedVectors(r: SecAggRunResult): Uint32Array[] {
  return stageAnswers(r)
    .filter((a) => a.stage === 'maskedInput' && a.bytes !== null)
    .map((a) => maskedFromWire(a.bytes!, PARAMS + 1, 'masked'));
}

describe('secure aggregation privacy: what the server receives (loopback gRPC, every request recorded)', () => {
  for (const build of ['masked', 'broken: masks disabled'] as const) {
    it(`${build}: ${build === 'masked' ? 'no update in any encoding; masked vectors pass χ² uniformity at α = 1e-6' : 'the same checks detect the updates (the suite can fail)'}`, async () => {
      const r = await runSecAgg({ workers: WORKERS, params: PARAMS, ...(build === 'masked' ? {} : { broken: 'masks' as const }) });
      expect(r.server).not.toBeInstanceOf(Error);
      expect(r.quantized.size).toBe(WORKERS);
      const vectors = maskedVectors(r);
      expect(vectors).toHaveLength(WORKERS);
      const leaks = findLeaks(r);
      const stats = vectors.map((v) => chiSquareTopBits(v, BITS));
      if (build === 'masked') {
        expect(leaks).toEqual([]);
        for (const s of stats) expect(s).toBeLessThan(CRITICAL);
      } else {
        expect(leaks).toContain('uint32 LE');
        for (const s of stats) expect(s).toBeGreaterThan(CRITICAL);
      }
    }, 60_000);
  }
});
