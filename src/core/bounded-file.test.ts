import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileBounded } from './bounded-file.ts';
import { CipherMLError } from './errors.ts';

async function refused(p: Promise<unknown>): Promise<CipherMLError> {
  return p.then(
    () => {
      throw new Error('read');
    },
    (e: unknown) => {
      expect(e).toBeInstanceOf(CipherMLError);
      return e as CipherMLError;
    },
  );
}

describe('readFileBounded', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-bounded-file-'));
    await writeFile(join(dir, 'small'), 'abc');
    await writeFile(join(dir, 'big'), Buffer.alloc(2 << 20));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads a file within the limit, byte for byte', async () => {
    expect(Buffer.from(await readFileBounded(join(dir, 'small'), '--x', 3)).toString()).toBe('abc');
    expect((await readFileBounded(join(dir, 'big'), '--x', 2 << 20)).length).toBe(2 << 20);
  });

  it('refuses a file above the limit from its size, naming the flag', async () => {
    const e = await refused(readFileBounded(join(dir, 'big'), '--onnx-path', 1 << 20));
    expect([e.code, e.param]).toEqual(['CIPHERML_E_INPUT_TOO_LARGE', '--onnx-path']);
  });

  it('stops an endless stream (/dev/zero) at the limit instead of reading to the end', async () => {
    expect((await refused(readFileBounded('/dev/zero', '--config', 4 << 20))).code).toBe('CIPHERML_E_INPUT_TOO_LARGE');
  });

  it('types a missing file and a folder as IO errors naming the flag', async () => {
    for (const path of [join(dir, 'nope'), dir]) {
      const e = await refused(readFileBounded(path, '--config', 1 << 20));
      expect([e.code, e.param]).toEqual(['CIPHERML_E_IO', '--config']);
    }
  });
});
