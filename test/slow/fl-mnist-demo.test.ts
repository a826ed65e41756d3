import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { loadIdxDataset } from '../../src/ml/idx.ts';

const run = promisify(execFile);
const bin = join(import.meta.dirname, '..', '..', 'bin', 'cipherml.js');
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('cipherml demo fl-mnist (separate processes over gRPC) and fl export-onnx', () => {
  it('Paillier LeNet-5 run: JSON summary, history, plot; the exported ONNX reproduces the reported test accuracy in onnxruntime', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fl-mnist-demo-'));
    dirs.push(dir);
    const runDir = join(dir, 'run');
    const { stdout } = await run(process.execPath, [bin, 'demo', 'fl-mnist', '--strategy', 'paillier', '--key-bits', '1024', '--clients', '2', '--rounds', '2', '--partition', 'shards:5', '--train-limit', '400', '--test-limit', '200', '--run-dir', runDir, '--json'], { maxBuffer: 1 << 26 });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(summary).toMatchObject({ strategy: 'paillier', clients: 2, partition: 'shards:5', rounds: 2, model: 'lenet5', processes: 3 });
    expect(typeof summary['accuracy']).toBe('number');
    expect(typeof summary['loss']).toBe('number');
    const history = JSON.parse(await readFile(join(runDir, 'history.json'), 'utf8')) as { rounds: unknown[] };
    expect(history.rounds).toHaveLength(2);
    expect(await readFile(join(runDir, 'history.svg'), 'utf8')).toContain('<svg');

    const out = join(dir, 'model.onnx');
    const exp = await run(process.execPath, [bin, 'fl', 'export-onnx', '--checkpoint', runDir, '--out', out, '--json']);
    expect(JSON.parse(exp.stdout)).toMatchObject({ model: 'lenet5', parameters: 61706, opset: 13 });
    const test = await loadIdxDataset(join(import.meta.dirname, '..', '..', 'examples', 'fl-mnist', 'mnist'), 't10k', 200);
    const session = await ort.InferenceSession.create(out);
    const res = await session.run({ input: new ort.Tensor('float32', Float32Array.from(test.images, (v) => v / 255), [200, 1, 28, 28]) });
    const logits = res[session.outputNames[0]!]!.data as Float32Array;
    let correct = 0;
    for (let i = 0; i < 200; i++) {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === test.labels[i]) correct++;
    }
    expect(correct / 200).toBeCloseTo(summary['accuracy'] as number, 6);
    // Refuses to overwrite the file it wrote.
    await expect(run(process.execPath, [bin, 'fl', 'export-onnx', '--checkpoint', runDir, '--out', out])).rejects.toMatchObject({ stderr: expect.stringContaining('CIPHERML_E_FILE_EXISTS') });
  });
});
