import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { codeOf } from '../../test/helpers.ts';
import { checkToken, deriveToken, flatten, tensorsFromWire, tensorsToWire, unflatten, specsOf, assertSameSpecs, leToF64, f64ToLe } from './protocol.ts';

describe('FL protocol helpers', () => {
  it('tensors survive the wire bit for bit, and flatten/unflatten round-trip', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 4 }), (arrays) => {
        const tensors = arrays.map((a, i) => ({ name: `t${i}`, shape: [a.length], values: Float64Array.from(a) }));
        const back = tensorsFromWire(tensorsToWire(tensors), 'x');
        expect(back.map((t) => Array.from(t.values))).toEqual(arrays.map((a) => a.map((v) => (Object.is(v, -0) ? -0 : v))));
        expect(unflatten(flatten(tensors), specsOf(tensors), 'x').map((t) => Array.from(t.values))).toEqual(back.map((t) => Array.from(t.values)));
        expect(Array.from(leToF64(f64ToLe(flatten(tensors)), 'x'))).toEqual(Array.from(flatten(tensors)));
      }),
    );
  });

  it('rejects tensors whose bytes do not fit their shape, non-finite values and other models', () => {
    const wire = tensorsToWire([{ name: 'w', shape: [3], values: Float64Array.of(1, 2, 3) }]);
    wire[0]!.data = wire[0]!.data.subarray(0, 16);
    expect(codeOf(() => tensorsFromWire(wire, 'x'))).toBe('CIPHERML_E_SHAPE_MISMATCH');
    expect(codeOf(() => tensorsFromWire(tensorsToWire([{ name: 'w', shape: [1], values: Float64Array.of(Number.NaN) }]), 'x'))).toBe('CIPHERML_E_NOT_FINITE');
    const a = specsOf([{ name: 'weights', shape: [30], values: new Float64Array(30) }]);
    const b = specsOf([{ name: 'weights', shape: [29], values: new Float64Array(29) }]);
    expect(codeOf(() => assertSameSpecs(a, b, 'model'))).toBe('CIPHERML_E_MODEL_MISMATCH');
    expect(codeOf(() => unflatten(new Float64Array(5), a, 'x'))).toBe('CIPHERML_E_SHAPE_MISMATCH');
  });

  it('derives one token per party: valid only for that party and that secret', () => {
    const t1 = deriveToken('s3cret', 'worker-1');
    expect(() => checkToken('s3cret', 'worker-1', t1)).not.toThrow();
    expect(codeOf(() => checkToken('s3cret', 'worker-2', t1))).toBe('CIPHERML_E_UNAUTHENTICATED');
    expect(codeOf(() => checkToken('other', 'worker-1', t1))).toBe('CIPHERML_E_UNAUTHENTICATED');
    expect(codeOf(() => checkToken('s3cret', 'worker-1', ''))).toBe('CIPHERML_E_UNAUTHENTICATED');
    expect(() => checkToken('', 'anyone', '')).not.toThrow();
  });
});
