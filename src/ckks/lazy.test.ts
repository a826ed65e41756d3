import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// Importing any cipherml area — including cipherml/ckks itself — must not resolve node-seal;
// only the first CKKS operation compiles the wasm.
describe('lazy SEAL loading', () => {
  it('importing core, paillier and ckks does not load node-seal', () => {
    const script = `
      import { registerHooks } from 'node:module';
      const seen = [];
      registerHooks({ resolve(spec, ctx, next) { if (spec.includes('node-seal')) seen.push(spec); return next(spec, ctx); } });
      await import('./src/core/index.ts');
      await import('./src/paillier/index.ts');
      const ckks = await import('./src/ckks/index.ts');
      const before = seen.length;
      await ckks.loadSeal();
      console.log(JSON.stringify({ before, after: seen.length }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url), encoding: 'utf8' });
    const { before, after } = JSON.parse(out.trim().split('\n').pop()!) as { before: number; after: number };
    expect(before).toBe(0);
    expect(after).toBeGreaterThan(0);
  });
});
