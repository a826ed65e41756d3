import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const probe = (extra: string) => `
  await import('./src/fl/index.ts');
  await import('./src/ml/index.ts');
  ${extra}
  const { createRequire } = await import('node:module');
  const cache = createRequire(import.meta.url).cache;
  console.log(Object.keys(cache).some((k) => k.includes('@tensorflow')));
`;

describe('lazy engine', () => {
  it('importing cipherml/fl and cipherml/ml does not load TensorFlow.js; loadEngine() does', async () => {
    const cold = await run(process.execPath, ['--input-type=module', '-e', probe('')], { cwd: process.cwd() });
    expect(cold.stdout.trim()).toBe('false');
    const warm = await run(process.execPath, ['--input-type=module', '-e', probe("await (await import('./src/ml/nn/engine.ts')).loadEngine('cpu');")], { cwd: process.cwd() });
    expect(warm.stdout.trim()).toBe('true');
  }, 60_000);
});
