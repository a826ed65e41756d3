import { describe, expect, it } from 'vitest';
import { cli, codeOf } from '../../test/helpers.ts';
import { keySizeFor, minKeyBitsOption } from './key-pinning.ts';

describe('the one key-size setting', () => {
  it('--insecure-min-key-bits takes 1024..2048 and sets minKeyBits; anything else is refused naming the flag', () => {
    expect(minKeyBitsOption(undefined)).toEqual({});
    expect(minKeyBitsOption(1024)).toEqual({ minKeyBits: 1024 });
    expect(minKeyBitsOption(2048)).toEqual({});
    for (const bad of [512, 1023, 2049, 4096, 1024.5, Number.NaN]) expect(codeOf(() => minKeyBitsOption(bad))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });

  it('parties started for a chosen key size get the same minimum as an option and as worker flags', () => {
    expect(keySizeFor(1024)).toEqual({ option: { minKeyBits: 1024 }, flags: ['--insecure-min-key-bits', '1024'] });
    for (const bits of [2048, 3072, 4096]) expect(keySizeFor(bits)).toEqual({ option: {}, flags: [] });
    expect(codeOf(() => keySizeFor(512))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });

  it('the worker command refuses an out-of-range --insecure-min-key-bits before connecting', async () => {
    const r = await cli('worker', '--server', '127.0.0.1:1', '--train-set', 'x.csv', '--id', '1', '--insecure-min-key-bits', '512', '--insecure-dev-tokens', '--json');
    expect(r.code).not.toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!).error).toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: '--insecure-min-key-bits' });
  });
});
