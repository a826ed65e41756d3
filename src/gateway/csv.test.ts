import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { refusal } from '../../test/helpers.ts';
import type { CipherMLError } from '../core/errors.ts';
import { gatewayFitFiles, gatewayPredictFiles, parseNumericCsv } from './gateway.ts';

describe('gateway CSV against hostile files (issue 13)', () => {
  it('refuses a huge line and a million columns before splitting, naming the file', () => {
    const e = refusal(() => parseNumericCsv(`a\n${'9'.repeat(2 << 20)}\n`, '--features'));
    expect([e.code, e.param]).toEqual(['CIPHERML_E_INPUT_TOO_LARGE', '--features']);
    expect(refusal(() => parseNumericCsv(`${'a,'.repeat(1_000_000)}a\n1\n`, '--features')).code).toBe('CIPHERML_E_INPUT_TOO_LARGE');
  });

  it('keeps its line-numbered errors', () => {
    expect(parseNumericCsv('a,b\r\n1,2\r\n\r\n3,4\r\n', 'x.csv').rows.map((r) => Array.from(r))).toEqual([[1, 2], [3, 4]]);
    expect(refusal(() => parseNumericCsv('a,b\n1,2\n\n3,NaN\n', 'x.csv')).message).toMatch(/line 4: column "b"/);
    expect(refusal(() => parseNumericCsv('\n1\n', 'x.csv')).code).toBe('CIPHERML_E_CSV_INVALID');
  });

  it('reads its files by size first and its JSON files bounded, before contacting the service (port 9 is never reached)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-gw-files-'));
    try {
      const common = { service: 'http://127.0.0.1:9', token: 't', model: 'lr/1', keyDir: join(dir, 'keys') };
      const endless = await gatewayPredictFiles({ ...common, features: '/dev/zero', out: join(dir, 'p.csv') }).then(() => undefined, (e: unknown) => e as CipherMLError);
      expect([endless?.code, endless?.param]).toEqual(['CIPHERML_E_INPUT_TOO_LARGE', '--features']);
      await writeFile(join(dir, 'model.json'), `{"coef_":${'['.repeat(5000)}${']'.repeat(5000)}}`);
      const deep = await gatewayFitFiles({ ...common, modelFile: join(dir, 'model.json'), hyperParams: 'x', features: 'x', labels: 'x', out: join(dir, 'o.json') }).then(() => undefined, (e: unknown) => e as CipherMLError);
      expect([deep?.code, deep?.param]).toEqual(['CIPHERML_E_JSON_INVALID', '--model-file']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
