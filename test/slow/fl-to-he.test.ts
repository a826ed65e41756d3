import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const bin = join(import.meta.dirname, '..', '..', 'bin', 'cipherml.js');
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('cipherml demo fl-to-he: federated training → ONNX → encrypted inference', () => {
  it('decrypted CKKS scores of the federated cnn-he agree with the plaintext model on ≥ 99 % of test digits', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fl-to-he-'));
    dirs.push(dir);
    const out = join(dir, 'out');
    const { stdout } = await run(process.execPath, [bin, 'demo', 'fl-to-he', '--out', out, '--clients', '3', '--rounds', '2', '--train-limit', '3000', '--digits', '300', '--json'], { maxBuffer: 1 << 26 });
    const s = JSON.parse(stdout.trim().split('\n').at(-1)!) as { accuracy: number; encryptedAccuracy: number; argmaxAgreement: number; maxAbsError: number; digits: number; onnx: string; training: Record<string, unknown>; ckks: { activationsReplaced: number } };
    expect(s.digits).toBe(300);
    expect(s.onnx).toBe(join(out, 'model.onnx'));
    expect((await stat(s.onnx)).size).toBeGreaterThan(100_000);
    expect(s.training).toMatchObject({ strategy: 'secagg', rounds: 2, clients: 3, model: 'cnn-he' });
    // The trained model learned something (10 classes: chance is 10 %), and the exported ONNX
    // in plaintext scores what the server measured with the engine on the same test digits
    // (float64 reference executor against float32 tfjs: a near-tie may flip).
    expect(s.accuracy).toBeGreaterThan(0.5);
    expect(Math.abs(s.accuracy - (s.training['accuracy'] as number))).toBeLessThanOrEqual(0.005);
    // cnn-he is polynomial: no activation is approximated, so only CKKS noise separates the two.
    expect(s.ckks.activationsReplaced).toBe(0);
    expect(s.argmaxAgreement).toBeGreaterThanOrEqual(0.99);
    expect(Math.abs(s.encryptedAccuracy - s.accuracy)).toBeLessThanOrEqual(0.01);
  }, 3_600_000);
});
