import { describe, expect, it } from 'vitest';
import * as secagg from './index.ts';

describe('secagg index', () => {
  it('exports the primitives', () => {
    for (const name of [
      'fieldAdd', 'fieldSub', 'fieldMul', 'fieldInv', 'randomFieldElement',
      'splitSecret', 'reconstructSecret', 'shareToBytes', 'shareFromBytes',
      'generateX25519KeyPair', 'x25519PublicFromPrivate', 'agreeKey', 'sealBox', 'openBox',
      'expandMask', 'aesCtrKeystream', 'addMod', 'subMod', 'addModInPlace', 'subModInPlace',
      'quantize', 'dequantizeSum', 'modulusBitsFor',
    ]) {
      expect(typeof (secagg as Record<string, unknown>)[name]).toBe('function');
    }
    expect(secagg.FIELD_PRIME).toBe(2n ** 521n - 1n);
  });
});
