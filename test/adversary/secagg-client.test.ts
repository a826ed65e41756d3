import { describe, expect, it } from 'vitest';
import { isCipherMLError } from '../../src/core/errors.ts';
import { modulusBitsFor } from '../../src/secagg/quantize.ts';
import { runSecAgg, valuesOf } from './harness-secagg.ts';

// A malicious client against the server and the honest clients: it masks a value outside the
// quantized range [0, Q − 1] (but inside Z_{2^k}, so its own protocol client accepts it), hoping
// to corrupt the aggregate. Claim: the unmasked sum is range-checked; the round fails with a
// typed error naming the round, never a silently wrong model. Against the build without the
// range check the same round "succeeds" with a corrupted model.

const SPEC = { clippingRange: 8, quantizationRange: 2 ** 22 };
const BITS = modulusBitsFor(5, SPEC);

describe('secure aggregation against a malicious client (loopback gRPC)', () => {
  const corrupt = (id: string, input: Uint32Array) => {
    if (id === 'w1') input[2] = 2 ** (BITS - 1);
  };

  it('an out-of-range contribution fails the round with CIPHERML_E_SECAGG_SUM_OUT_OF_RANGE naming the round', async () => {
    const r = await runSecAgg({ corrupt });
    expect(isCipherMLError(r.server, 'CIPHERML_E_SECAGG_SUM_OUT_OF_RANGE')).toBe(true);
    expect((r.server as Error).message).toMatch(/round: round ".*-r1a1": entry 2 of the unmasked sum/);
  }, 60_000);

  it('the build without the range check yields a silently wrong model', async () => {
    const r = await runSecAgg({ corrupt, broken: 'range' });
    expect(r.server).not.toBeInstanceOf(Error);
    const model = (r.server as { model: readonly { values: Float64Array }[] }).model![0]!.values;
    const honestMean = [1, 2, 3, 4, 5].reduce((a, i) => a + valuesOf(i * 1000 + 1, 64)[1]!, 0) / 5;
    expect(Math.abs(model[1]! - honestMean)).toBeGreaterThan(1);
  }, 60_000);
});
