import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/inference/builder.ts';
import { runPlain } from '../../src/inference/execute.ts';
import { readSecretKeyFile } from '../../src/ckks/index.ts';
import { encryptBatch, heDecrypt, heEncrypt, heInference, heKeygen, heKeyParams } from '../../src/inference/he.ts';
import { readArrays, readNpy, readZip, writeNpy, writeZip } from '../../src/inference/npy.ts';
import { parseOnnx } from '../../src/inference/onnx.ts';
import type { Tensor } from '../../src/inference/onnx.ts';

// The five HE-MAN steps on files, on a Gemm → Relu → Gemm model: keyparams replaces Relu with a
// fitted polynomial, the decrypted output matches onnxruntime on model_calibrated.onnx (2e-3) and
// stays close to the original Relu model (the polynomial's error, reported in keyparams).
let seed = 7;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31 - 0.5;
};
const t = (dims: number[]): Tensor => ({ dims, data: Float64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, rand) });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cipherml-he-'));
  const b = new GraphBuilder(11);
  const x = b.input('x', [null, 6]);
  const h = b.node('Gemm', [x, b.init('w1', t([6, 5])), b.init('b1', t([5]))]);
  const r = b.node('Relu', [h], {}, 'relu1');
  b.output(b.node('Gemm', [r, b.init('w2', t([5, 3])), b.init('b2', t([3]))]));
  await writeFile(join(dir, 'model.onnx'), b.toBytes());
  const calib = { dims: [64, 6], data: Float64Array.from({ length: 384 }, () => rand() * 4) };
  await writeFile(join(dir, 'calib.npz'), writeZip(new Map([['a.npy', writeNpy({ dims: [32, 6], data: calib.data.subarray(0, 192) })], ['b.npy', writeNpy({ dims: [32, 6], data: calib.data.subarray(192) })]])));
  await writeFile(join(dir, 'input.npy'), writeNpy({ dims: [5, 6], data: Float64Array.from({ length: 30 }, () => rand() * 3) }));
});

describe('npy / npz', () => {
  it('round-trips .npy and reads stored zip members in name order', () => {
    const a: Tensor = { dims: [2, 3], data: Float64Array.of(1, -2, 3.5, 0, 1e-3, 7) };
    const back = readNpy(writeNpy(a, '<f8'));
    expect(back.dims).toEqual([2, 3]);
    expect(Array.from(back.data)).toEqual(Array.from(a.data));
    const zip = writeZip(new Map([['y.npy', writeNpy(a)], ['x.npy', writeNpy({ dims: [1], data: Float64Array.of(9) })]]));
    expect([...readZip(zip).keys()]).toEqual(['y.npy', 'x.npy']);
    expect(readArrays(zip).map((r) => r.dims)).toEqual([[1], [2, 3]]);
    const bad = Uint8Array.from(zip);
    bad[40] = bad[40]! ^ 0xff;
    expect(() => readArrays(bad)).toThrow(/CIPHERML_E_FORMAT_CORRUPT/);
    expect(() => readNpy(writeNpy(a).subarray(0, 100))).toThrow(/CIPHERML_E_FORMAT_TRUNCATED/);
  });
});

describe('he keyparams → keygen → encrypt → inference → decrypt', () => {
  it('decrypts what onnxruntime computes on the calibrated model', async () => {
    const { keyParams, calibratedModel } = await heKeyParams({ model: join(dir, 'model.onnx'), calibration: join(dir, 'calib.npz'), out: join(dir, 'keyparams.json'), degree: 2 });
    expect(keyParams.activations.map((a) => a.node)).toEqual(['relu1']);
    expect(keyParams.depth).toBe(3);
    expect(calibratedModel).toBe(join(dir, 'model_calibrated.onnx'));
    const keys = await heKeygen({ keyParams: join(dir, 'keyparams.json'), out: join(dir, 'key') });
    expect((await stat(keys.secretKeyPath)).mode & 0o777).toBe(0o600);
    await heEncrypt({ key: join(dir, 'key'), input: join(dir, 'input.npy'), out: join(dir, 'input.enc') });
    await heInference({ model: calibratedModel, key: join(dir, 'key.pub'), input: join(dir, 'input.enc'), out: join(dir, 'output.enc') });
    const out = await heDecrypt({ key: join(dir, 'key'), input: join(dir, 'output.enc'), out: join(dir, 'output.npy') });
    expect(out.dims).toEqual([5, 3]);

    const input = readNpy(await readFile(join(dir, 'input.npy')));
    const session = await ort.InferenceSession.create(await readFile(calibratedModel));
    const ref = (await session.run({ x: new ort.Tensor('float32', Float32Array.from(input.data), [5, 6]) }))[session.outputNames[0]!]!.data as Float32Array;
    await session.release();
    out.data.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(2e-3));
    const relu = runPlain(parseOnnx(await readFile(join(dir, 'model.onnx'))), input);
    const polyErr = keyParams.activations[0]!.maxError;
    out.data.forEach((v, i) => expect(Math.abs(v - relu.data[i]!)).toBeLessThan(10 * polyErr + 1e-2));
    expect(Array.from(readNpy(await readFile(join(dir, 'output.npy'))).data).map((v) => Math.fround(v))).toEqual(Array.from(out.data, (v) => Math.fround(v)));
  });

  it('bad inputs: another key set, tampered file, wrong shape, keys too small, readable secret key', async () => {
    await heKeygen({ keyParams: join(dir, 'keyparams.json'), out: join(dir, 'other') });
    await expect(heDecrypt({ key: join(dir, 'other'), input: join(dir, 'output.enc'), out: join(dir, 'x.npy') })).rejects.toMatchObject({ code: 'CIPHERML_E_KEY_MISMATCH' });
    const enc = await readFile(join(dir, 'input.enc'));
    await writeFile(join(dir, 'trunc.enc'), enc.subarray(0, enc.length >> 1));
    await expect(heInference({ model: join(dir, 'model_calibrated.onnx'), key: join(dir, 'key.pub'), input: join(dir, 'trunc.enc'), out: join(dir, 'o1.enc') })).rejects.toMatchObject({ code: 'CIPHERML_E_FORMAT_TRUNCATED' });
    const tampered = Buffer.from(enc);
    tampered[tampered.length - 100] = tampered[tampered.length - 100]! ^ 1;
    await writeFile(join(dir, 'tampered.enc'), tampered);
    await expect(heInference({ model: join(dir, 'model_calibrated.onnx'), key: join(dir, 'key.pub'), input: join(dir, 'tampered.enc'), out: join(dir, 'o2.enc') })).rejects.toMatchObject({ code: 'CIPHERML_E_FORMAT_CORRUPT' });
    await writeFile(join(dir, 'wide.npy'), writeNpy({ dims: [2, 7], data: new Float64Array(14) }));
    // Refused at encrypt (the key file records the model's input shape) …
    await expect(heEncrypt({ key: join(dir, 'key'), input: join(dir, 'wide.npy'), out: join(dir, 'wide.enc') })).rejects.toMatchObject({ code: 'CIPHERML_E_INFERENCE_INPUT_SHAPE', param: 'input' });
    // … and at inference for a file made without that check.
    const client = await readSecretKeyFile(join(dir, 'key'));
    await writeFile(join(dir, 'wide.enc'), encryptBatch(client, [new Float64Array(7), new Float64Array(7)], [7]));
    client.delete();
    await expect(heInference({ model: join(dir, 'model_calibrated.onnx'), key: join(dir, 'key.pub'), input: join(dir, 'wide.enc'), out: join(dir, 'o3.enc') })).rejects.toMatchObject({ code: 'CIPHERML_E_INFERENCE_INPUT_SHAPE' });
    const kp = JSON.parse(await readFile(join(dir, 'keyparams.json'), 'utf8')) as { params: { coeffModulusBits: number[] } };
    kp.params.coeffModulusBits = [kp.params.coeffModulusBits[0]!, kp.params.coeffModulusBits[1]!, kp.params.coeffModulusBits.at(-1)!];
    await writeFile(join(dir, 'small.json'), JSON.stringify(kp));
    await heKeygen({ keyParams: join(dir, 'small.json'), out: join(dir, 'small') });
    await heEncrypt({ key: join(dir, 'small'), input: join(dir, 'input.npy'), out: join(dir, 'small.enc') });
    await expect(heInference({ model: join(dir, 'model_calibrated.onnx'), key: join(dir, 'small.pub'), input: join(dir, 'small.enc'), out: join(dir, 'o4.enc') })).rejects.toMatchObject({ code: 'CIPHERML_E_KEYPARAMS_TOO_SMALL' });
    await expect(heInference({ model: join(dir, 'model.onnx'), key: join(dir, 'key.pub'), input: join(dir, 'input.enc'), out: join(dir, 'o5.enc') })).rejects.toMatchObject({ code: 'CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR' });
    await chmod(join(dir, 'key'), 0o640);
    await expect(heEncrypt({ key: join(dir, 'key'), input: join(dir, 'input.npy'), out: join(dir, 'o6.enc') })).rejects.toMatchObject({ code: 'CIPHERML_E_KEY_FILE_INSECURE' });
  });
});
