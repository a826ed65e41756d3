import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CipherMLError } from '../core/errors.ts';
import { loadRunConfig } from './config.ts';

describe('run config files against hostile input (issue 13)', () => {
  it('loadRunConfig refuses a 2 MiB run config by its size, naming --config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-toml-'));
    try {
      const path = join(dir, 'run.toml');
      await writeFile(path, `# ${'x'.repeat(2 << 20)}\nseed = 1\n`);
      const e = await loadRunConfig({ path }).then(
        () => undefined,
        (err: unknown) => err as CipherMLError,
      );
      expect([e?.code, e?.param]).toEqual(['CIPHERML_E_INPUT_TOO_LARGE', '--config']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
