import { describe, expect, it } from 'vitest';
import { refusal } from '../../test/helpers.ts';
import { parseTomlBounded } from './bounded-toml.ts';

// Hostile TOML (issue 13): deep, wide, huge or prototype-polluting files are refused with a typed
// error naming the flag or file, never a stack overflow or a parse proportional to a declaration.

const peakMb = (): number => process.resourceUsage().maxRSS / 1024;

describe('parseTomlBounded', () => {
  it('refuses 100,000-deep inline arrays and tables', () => {
    for (const text of [`a = ${'['.repeat(100_000)}${']'.repeat(100_000)}`, `a = ${'{b='.repeat(100_000)}1${'}'.repeat(100_000)}`]) {
      const e = refusal(() => parseTomlBounded(text, 'run.toml', '--config'));
      expect([e.code, e.param]).toEqual(['CIPHERML_E_CONFIG_INVALID', '--config']);
    }
  });

  it('refuses depth built by dotted keys and table headers (not covered by the inline limit)', () => {
    const dotted = `${Array.from({ length: 5000 }, () => 'k').join('.')} = 1`;
    expect(refusal(() => parseTomlBounded(dotted, 'run.toml', '--config')).message).toMatch(/deeper than 32 levels/);
    const header = `[${Array.from({ length: 5000 }, () => 'k').join('.')}]\nx = 1`;
    expect(refusal(() => parseTomlBounded(header, 'run.toml', '--config')).message).toMatch(/deeper than 32 levels/);
  });

  it('refuses a file above the size limit before parsing it, and too many keys', () => {
    const before = peakMb();
    const huge = `a = "${'x'.repeat(4 << 20)}"`;
    const e = refusal(() => parseTomlBounded(huge, 'run.toml', '--config'));
    expect([e.code, e.param]).toEqual(['CIPHERML_E_INPUT_TOO_LARGE', '--config']);
    expect(refusal(() => parseTomlBounded(`a = [${'1,'.repeat(2000)}1]`, 'run.toml', '--config', { maxKeys: 1000 })).message).toMatch(/more than 1000 keys/);
    expect(peakMb() - before).toBeLessThan(64);
  });

  it('refuses __proto__ and constructor keys; keeps line and column in syntax errors', () => {
    expect(refusal(() => parseTomlBounded('[__proto__]\npolluted = true\n', 'run.toml', '--config')).code).toBe('CIPHERML_E_CONFIG_INVALID');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(refusal(() => parseTomlBounded('seed = 1\nx = = 2\n', 'conf.toml', '--config')).message).toMatch(/invalid TOML at line 2, column \d+/);
    expect(parseTomlBounded('[tool.cipherml]\nseed = 3\n', 'p.toml', '--config')).toEqual({ tool: { cipherml: { seed: 3 } } });
  });
});
