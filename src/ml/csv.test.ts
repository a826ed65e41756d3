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
});
