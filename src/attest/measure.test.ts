import { cp, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureBundle } from './measure.ts';

describe('enclave measurement', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-measure-'));
    await mkdir(join(dir, 'a', 'sub'), { recursive: true });
    await writeFile(join(dir, 'a', 'main.js'), 'console.log(1)\n');
    await writeFile(join(dir, 'a', 'sub', 'lib.js'), 'export const x = 1;\n');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('two measurements of the same tree are equal, also for a copy with other file times', async () => {
    const a = await measureBundle({ bundle: join(dir, 'a'), config: { minFit: 2, keyBits: 3072 } });
    const b = await measureBundle({ bundle: join(dir, 'a'), config: { keyBits: 3072, minFit: 2 } });
    expect(b.measurement).toBe(a.measurement);
    expect(a.measurement).toMatch(/^[0-9a-f]{96}$/);
    await cp(join(dir, 'a'), join(dir, 'copy'), { recursive: true });
    await utimes(join(dir, 'copy', 'main.js'), new Date(0), new Date(0));
    expect((await measureBundle({ bundle: join(dir, 'copy'), config: { minFit: 2, keyBits: 3072 } })).measurement).toBe(a.measurement);
  });

  it('a changed file, an added file, another config or another Node binary change it', async () => {
    const base = (await measureBundle({ bundle: join(dir, 'a') })).measurement;
    await cp(join(dir, 'a'), join(dir, 'b'), { recursive: true });
    await writeFile(join(dir, 'b', 'sub', 'lib.js'), 'export const x = 2;\n');
    expect((await measureBundle({ bundle: join(dir, 'b') })).measurement).not.toBe(base);
    await cp(join(dir, 'a'), join(dir, 'c'), { recursive: true });
    await writeFile(join(dir, 'c', 'extra.js'), '');
    expect((await measureBundle({ bundle: join(dir, 'c') })).measurement).not.toBe(base);
    expect((await measureBundle({ bundle: join(dir, 'a'), config: { minFit: 3 } })).measurement).not.toBe(base);
    expect((await measureBundle({ bundle: join(dir, 'a'), node: join(dir, 'a', 'main.js') })).measurement).not.toBe(base);
  });

  it('the project\'s own src/ measures the same twice', async () => {
    const src = join(import.meta.dirname, '..');
    const [x, y] = await Promise.all([measureBundle({ bundle: src }), measureBundle({ bundle: src })]);
    expect(x.measurement).toBe(y.measurement);
    expect(x.files).toBeGreaterThan(50);
  });

  it('refuses a bundle that is not a directory, naming --bundle', async () => {
    await expect(measureBundle({ bundle: join(dir, 'a', 'main.js') })).rejects.toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: '--bundle' });
    await expect(measureBundle({ bundle: join(dir, 'absent') })).rejects.toMatchObject({ code: 'CIPHERML_E_IO', param: '--bundle' });
  });
});
