import { describe, expect, it } from 'vitest';
import { CipherMLError } from '../core/errors.ts';
import { parseNumericCsv } from './gateway.ts';

function refused(f: () => unknown): CipherMLError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CipherMLError);
    return e as CipherMLError;
  }
  throw new Error('parsed');
}

describe('gateway CSV against hostile files (issue 13)', () => {
  it('refuses a huge line and a million columns before splitting, naming the file', () => {
    const e = refused(() => parseNumericCsv(`a\n${'9'.repeat(2 << 20)}\n`, '--features'));
    expect([e.code, e.param]).toEqual(['CIPHERML_E_INPUT_TOO_LARGE', '--features']);
    expect(refused(() => parseNumericCsv(`${'a,'.repeat(1_000_000)}a\n1\n`, '--features')).code).toBe('CIPHERML_E_INPUT_TOO_LARGE');
  });

  it('keeps its line-numbered errors', () => {
    expect(parseNumericCsv('a,b\r\n1,2\r\n\r\n3,4\r\n', 'x.csv').rows.map((r) => Array.from(r))).toEqual([[1, 2], [3, 4]]);
    expect(refused(() => parseNumericCsv('a,b\n1,2\n\n3,NaN\n', 'x.csv')).message).toMatch(/line 4: column "b"/);
    expect(refused(() => parseNumericCsv('\n1\n', 'x.csv')).code).toBe('CIPHERML_E_CSV_INVALID');
  });
});
