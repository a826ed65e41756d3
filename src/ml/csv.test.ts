import { describe, expect, it } from 'vitest';
import { codeOf, codeOfAsync } from '../../test/helpers.ts';
import fc from 'fast-check';
import { loadCsvDataset, parseCsvDataset, shardDataset } from './csv.ts';

describe('CSV datasets', () => {
  it('parses features and labels, dropping id', () => {
    const ds = parseCsvDataset('id,y,x0,x1\n1,0,0.5,2\n2,1,-1,3\n');
    expect(ds.featureNames).toEqual(['x0', 'x1']);
    expect(Array.from(ds.labels)).toEqual([0, 1]);
    expect(Array.from(ds.features[1]!)).toEqual([-1, 3]);
  });

  it('loads the bundled breast cancer split', async () => {
    const ds = await loadCsvDataset('examples/data/breast_homo_guest.csv');
    expect(ds.features.length).toBe(227);
    expect(ds.featureNames.length).toBe(30);
  });

  it('names the bad cell, the missing label column and the missing file', async () => {
    expect(codeOf(() => parseCsvDataset('y,x\n1,abc\n'))).toBe('CIPHERML_E_NOT_FINITE');
    expect(() => parseCsvDataset('y,x\n1,abc\n')).toThrow(/row 2, column "x"/);
    expect(codeOf(() => parseCsvDataset('label,x\n1,2\n'))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => parseCsvDataset('y,x\n1\n'))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(await codeOfAsync(() => loadCsvDataset('nope.csv'))).toBe('CIPHERML_E_IO');
  });

  it('shards partition the rows in order, for any row count and shard count (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }), (n, k) => {
        fc.pre(k <= n);
        const ds = parseCsvDataset(`y,x\n${Array.from({ length: n }, (_, i) => `${i % 2},${i}`).join('\n')}\n`);
        const rows = Array.from({ length: k }, (_, i) => shardDataset(ds, i + 1, k)).flatMap((s) => s.features.map((f) => f[0]));
        expect(rows).toEqual(Array.from({ length: n }, (_, i) => i));
      }),
    );
  });

  it('rejects shard numbers outside the data', () => {
    const ds = parseCsvDataset('y,x\n0,1\n1,2\n');
    expect(codeOf(() => shardDataset(ds, 3, 2))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => shardDataset(ds, 1, 3))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });

  it('refuses a huge line, too many cells, too many rows and a file too large before splitting them (issue 13)', async () => {
    const peakMb = (): number => process.resourceUsage().maxRSS / 1024;
    const wide = `y,${'1,'.repeat(4_000_000)}1\n`; // 8 MB: a naive split builds 4 M strings (> 100 MB)
    const before = peakMb();
    const e = (() => {
      try {
        parseCsvDataset(wide, { param: '--train-set' });
      } catch (err) {
        return err as { code: string; param: string; message: string };
      }
      throw new Error('parsed');
    })();
    expect([e.code, e.param]).toEqual(['CIPHERML_E_INPUT_TOO_LARGE', '--train-set']);
    expect(e.message).toMatch(/line 1 is 8000003 characters long/);
    expect(peakMb() - before).toBeLessThan(64);
    expect(codeOf(() => parseCsvDataset(wide, { limits: { maxLineChars: 1 << 24 } }))).toBe('CIPHERML_E_INPUT_TOO_LARGE'); // > 16,384 cells
    expect(codeOf(() => parseCsvDataset('y,x\n1,2\n3,4\n5,6\n', { limits: { maxLines: 3 } }))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(await codeOfAsync(() => loadCsvDataset('examples/data/breast_homo_guest.csv', { limits: { maxChars: 1024 } }))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    // Not a regular file: read in chunks and refused past the limit, never to the end.
    expect(await codeOfAsync(() => loadCsvDataset('/dev/zero', { limits: { maxChars: 4 << 20 } }))).toBe('CIPHERML_E_INPUT_TOO_LARGE');
  });

  it('reports real line numbers with blank lines and CR LF', () => {
    expect(() => parseCsvDataset('y,x\r\n\r\n1,2\r\n\r\n1,z\r\n')).toThrow(/row 5, column "x" is "z"/);
  });
});
