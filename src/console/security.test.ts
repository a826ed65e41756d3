import { describe, expect, it } from 'vitest';
import { RateLimiter, checkOrigin, readCookie, sameToken, sessionCookie } from './security.ts';

describe('console security helpers', () => {
  it('reads only well-formed session cookies', () => {
    expect(readCookie('a=1; cml_session=abc_DEF-1; b=2', 'cml_session')).toBe('abc_DEF-1');
    expect(readCookie('cml_session=a b', 'cml_session')).toBeUndefined();
    expect(readCookie('cml_session=' + 'a'.repeat(200), 'cml_session')).toBeUndefined();
    expect(readCookie(undefined, 'cml_session')).toBeUndefined();
    expect(sessionCookie('v', 60, true)).toBe('cml_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure');
  });

  it('accepts a same-origin or absent Origin, refuses any other', () => {
    expect(() => checkOrigin(undefined, 'h:1')).not.toThrow();
    expect(() => checkOrigin('http://h:1', 'h:1')).not.toThrow();
    expect(() => checkOrigin('http://h:2', 'h:1')).toThrow(expect.objectContaining({ code: 'CIPHERML_E_SERVICE_FORBIDDEN', param: 'Origin' }));
    expect(() => checkOrigin('null', 'h:1')).toThrow(expect.objectContaining({ param: 'Origin' }));
    expect(sameToken('abc', 'abc')).toBe(true);
    expect(sameToken('abc', 'abd')).toBe(false);
    expect(sameToken('abc', 'ab')).toBe(false);
  });

  it('rate limiter: locks a key at its limit until the window ends; memory stays bounded', () => {
    let t = 0;
    const rl = new RateLimiter({ failuresPerName: 2, failuresPerAddress: 10, signupsPerAddress: 1, windowMs: 1000 }, () => t);
    const keys = ['name:a'];
    rl.check(keys, [2], 'x');
    rl.hit(keys);
    rl.hit(keys);
    expect(() => rl.check(keys, [2], 'x')).toThrow(expect.objectContaining({ code: 'CIPHERML_E_SERVICE_BUSY', param: 'name' }));
    t = 1000;
    expect(() => rl.check(keys, [2], 'x')).not.toThrow();
    for (let i = 0; i < 20_000; i++) rl.hit([`addr:${i}`]);
    rl.hit(['addr:19999']);
    expect(() => rl.check(['addr:19999'], [2], 'x')).toThrow();
  });
});
