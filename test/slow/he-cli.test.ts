import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { GraphBuilder } from '../../src/inference/builder.ts';
import { readNpy, writeNpy } from '../../src/inference/npy.ts';
import { parseOnnx } from '../../src/inference/onnx.ts';
import { runPlain } from '../../src/inference/execute.ts';

// `cipherml he …` through the real command parser: HE-MAN's short flags, options from CIPHERML_HE_*
// environment variables, JSON output, typed errors as exit code 1.
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

async function run(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += process.env['HE_CLI_DEBUG'] === '1' ? String(s) : ''), true));
  const code = await main(['node', 'cipherml', ...args]);
  vi.restoreAllMocks();
  return { code, stdout };
}

describe('cipherml he', () => {
  it('keyparams → keygen → encrypt → inference → decrypt with short flags and env vars', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cipherml-he-cli-'));
    const b = new GraphBuilder(13);
    const x = b.input('x', [null, 4]);
    const h = b.node('Gemm', [x, b.init('w', { dims: [4, 3], data: Float64Array.of(0.5, -1, 0.25, 1, 0.5, -0.5, -0.25, 0.75, 1, 0.1, 0.2, 0.3) })]);
    b.output(b.node('Sigmoid', [h]));
    const model = join(dir, 'm.onnx');
    await writeFile(model, b.toBytes());
    await writeFile(join(dir, 'calib.npy'), writeNpy({ dims: [50, 4], data: Float64Array.from({ length: 200 }, (_, i) => Math.sin(i)) }));
    await writeFile(join(dir, 'in.npy'), writeNpy({ dims: [3, 4], data: Float64Array.from({ length: 12 }, (_, i) => Math.cos(i) * 0.8) }));

    const kp = await run(['he', 'keyparams', '-m', model, '-c', join(dir, 'calib.npy'), '-o', join(dir, 'kp.json'), '--degree', '3', '--json']);
    expect(kp).toMatchObject({ code: 0 });
    expect(JSON.parse(kp.stdout)).toMatchObject({ packing: 'auto', calibratedModel: join(dir, 'm_calibrated.onnx') });
    vi.stubEnv('CIPHERML_HE_KEYPARAMS', join(dir, 'kp.json'));
    expect((await run(['he', 'keygen', '-o', join(dir, 'key')])).code).toBe(0);
    expect((await stat(join(dir, 'key'))).mode & 0o777).toBe(0o600);
    vi.stubEnv('CIPHERML_HE_KEY', join(dir, 'key'));
    const ref = runPlain(parseOnnx(await readFile(model)), readNpy(await readFile(join(dir, 'in.npy'))));
    for (const packing of ['batch', 'single']) {
      vi.stubEnv('CIPHERML_HE_PACKING', packing);
      const enc = await run(['he', 'encrypt', '-i', join(dir, 'in.npy'), '-o', join(dir, `in-${packing}.enc`), '--json', ...(packing === 'batch' ? ['-t', '2'] : [])]);
      expect(JSON.parse(enc.stdout)).toMatchObject({ packing, batch: 3, threads: packing === 'batch' ? 2 : 1 });
      vi.unstubAllEnvs();
      vi.stubEnv('CIPHERML_HE_KEY', join(dir, 'key'));
      const inf = await run(['he', 'inference', '-m', join(dir, 'm_calibrated.onnx'), '-k', join(dir, 'key.pub'), '-i', join(dir, `in-${packing}.enc`), '-o', join(dir, `out-${packing}.enc`), '--json', ...(packing === 'batch' ? ['-t', '2'] : [])]);
      expect(inf.code, inf.stdout).toBe(0);
      // Two worker threads for the batch file; a single-packed file runs on the calling thread.
      expect(JSON.parse(inf.stdout)).toMatchObject({ packing, threads: packing === 'batch' ? 2 : 1 });
      const dec = await run(['he', 'decrypt', '-i', join(dir, `out-${packing}.enc`), '-o', join(dir, `out-${packing}.npy`), '--json']);
      expect(dec.code, dec.stdout).toBe(0);
      const out = readNpy(await readFile(join(dir, `out-${packing}.npy`)));
      expect(out.dims).toEqual([3, 3]);
      // Degree-3 least-squares sigmoid on the calibrated range: within 0.02 of the true sigmoid.
      out.data.forEach((v, i) => expect(Math.abs(v - ref.data[i]!)).toBeLessThan(0.02));
    }
    expect((await run(['he', 'encrypt', '-i', join(dir, 'in.npy'), '-o', join(dir, 'in.enc'), '--packing', 'diagonal'])).code).toBe(2); // usage error

    const again = await run(['he', 'keygen', '-i', join(dir, 'kp.json'), '-o', join(dir, 'key'), '--json']);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout).error.code).toBe('CIPHERML_E_FILE_EXISTS');
  });
});
