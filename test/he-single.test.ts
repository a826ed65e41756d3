import { chmod, copyFile, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CkksContext as Ctx } from '../src/ckks/index.ts';
import { CkksContext, deserializeCiphertexts, encryptToBytes, readPublicContextFile, readSecretKeyFile, writeKeyFiles } from '../src/ckks/index.ts';
import { GraphBuilder } from '../src/inference/builder.ts';
import type { KeyParams } from '../src/inference/calibrate.ts';
import { runPlain } from '../src/inference/execute.ts';
import { choosePacking, decryptOutput, encryptSingle, heDecrypt, heEncrypt, heInference, heKeygen, heKeyParams, inferBytes } from '../src/inference/he.ts';
import { readNpy, writeNpy } from '../src/inference/npy.ts';
import type { Graph, Tensor } from '../src/inference/onnx.ts';
import { parseOnnx } from '../src/inference/onnx.ts';
import { compileSingle, packSingleInput, prepareSingle } from '../src/inference/single.ts';
import { codeOf, codeOfAsync } from './helpers.ts';

// The five HE-MAN steps on files with the single plan (one sample packed into the slots of one
// ciphertext, replicated every `period` slots; diagonal matrix-vector products with rotations),
// on Conv 1→2 3×3 → Relu → Flatten → Gemm(32→3). keyparams is run three times on copies of the
// model (--packing single, auto, batch) so each key set records its own plans and hints.
let seed = 11;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31 - 0.5;
};
const t = (dims: number[]): Tensor => ({ dims, data: Float64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, rand) });
const SAMPLE = [1, 6, 6];
const PER = 36;

let dir: string;
const kp: Partial<Record<'single' | 'auto' | 'batch', KeyParams>> = {};
let calibrated: Graph;
let calibratedBytes: Uint8Array;
let server: Ctx; // key-single.pub: evaluation keys only
let client: Ctx; // key-single: secret key only

const p = (name: string): string => join(dir, name);
const exists = async (name: string): Promise<boolean> => stat(p(name)).then(
  () => true,
  () => false,
);
const samples = (t: Tensor): Float64Array[] => Array.from({ length: t.dims[0]! }, (_, s) => t.data.subarray(s * PER, (s + 1) * PER));
const singleMeta = (extra: Record<string, unknown>): Record<string, unknown> => ({ format: 'cipherml-he-tensor', packing: 'single', batch: 1, dims: SAMPLE, period: 64, ...extra });

/** onnxruntime on the calibrated model (float32). */
async function reference(input: Tensor): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(calibratedBytes);
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(input.data), input.dims as number[]) });
  await session.release();
  return out[session.outputNames[0]!]!.data as Float32Array;
}

/**
 * Re-frames a ciphertext file after `edit` changes its decompressed body (sections
 * `u32 length ‖ bytes`), with a valid CRC: a forgery the envelope's integrity check cannot see.
 */
function reframe(file: Uint8Array, edit: (raw: Uint8Array) => void): Uint8Array {
  const body = file.subarray(28, file.length - 4);
  const raw = Uint8Array.from(zstdDecompressSync(body.subarray(5)));
  edit(raw);
  const packed = zstdCompressSync(raw);
  const out = new Uint8Array(28 + 5 + packed.length + 4);
  out.set(file.subarray(0, 28));
  const view = new DataView(out.buffer);
  view.setUint32(24, 5 + packed.length);
  out[28] = 1;
  view.setUint32(29, raw.length);
  out.set(packed, 33);
  view.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)));
  return out;
}

/** Offsets of the sections of a decompressed ciphertext body. */
function sections(raw: Uint8Array): number[] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const at: number[] = [];
  for (let o = 0; o < raw.length; o += 4 + view.getUint32(o)) at.push(o + 4);
  return at;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cipherml-he-single-'));
  const b = new GraphBuilder(13);
  const x = b.input('x', [null, ...SAMPLE]);
  const c = b.node('Conv', [x, b.init('w1', t([2, 1, 3, 3])), b.init('b1', t([2]))]);
  const r = b.node('Relu', [c], {}, 'relu1');
  const f = b.node('Flatten', [r], { axis: 1 });
  b.output(b.node('Gemm', [f, b.init('w2', t([32, 3])), b.init('b2', t([3]))]));
  await writeFile(p('model.onnx'), b.toBytes());
  await writeFile(p('calib.npy'), writeNpy({ dims: [48, ...SAMPLE], data: Float64Array.from({ length: 48 * PER }, () => rand() * 4) }));
  await writeFile(p('input.npy'), writeNpy({ dims: [2, ...SAMPLE], data: Float64Array.from({ length: 2 * PER }, () => rand() * 3) }));
  await writeFile(p('one.npy'), writeNpy({ dims: [1, ...SAMPLE], data: Float64Array.from({ length: PER }, () => rand() * 3) }));
  await writeFile(p('three.npy'), writeNpy({ dims: [3, ...SAMPLE], data: Float64Array.from({ length: 3 * PER }, () => rand() * 3) }));
  for (const packing of ['single', 'auto', 'batch'] as const) {
    // keyparams writes <model>_calibrated.onnx beside the model: one copy of the model per run.
    await copyFile(p('model.onnx'), p(`${packing}.onnx`));
    kp[packing] = (await heKeyParams({ model: p(`${packing}.onnx`), calibration: p('calib.npy'), out: p(`kp-${packing}.json`), packing, degree: 2 })).keyParams;
    await heKeygen({ keyParams: p(`kp-${packing}.json`), out: p(`key-${packing}`) });
  }
  calibratedBytes = await readFile(p('single_calibrated.onnx'));
  calibrated = parseOnnx(calibratedBytes);
  server = await readPublicContextFile(p('key-single.pub'));
  client = await readSecretKeyFile(p('key-single'));
});
afterAll(() => {
  server?.delete();
  client?.delete();
});

describe('he keyparams → keygen → encrypt → inference → decrypt, single packing', () => {
  it('records the single plan in the key set and decrypts what onnxruntime computes, for single and auto key sets', async () => {
    const single = kp.single!;
    const auto = kp.auto!;
    const batch = kp.batch!;
    const plan = compileSingle(calibrated);
    expect(plan.inputPeriod).toBe(64); // 36 values → next power of two
    expect(single).toMatchObject({ packing: 'single', depth: plan.depth, galoisSteps: plan.galoisSteps, singleUpTo: single.params.polyModulusDegree / 2 });
    expect(single.plans.single).toMatchObject({ depth: plan.depth, inputPeriod: 64, slots: plan.slotCount });
    expect(single.plans.batch).toBeUndefined();
    expect(plan.galoisSteps.length).toBeGreaterThan(0);
    expect(auto).toMatchObject({ packing: 'auto', galoisSteps: plan.galoisSteps });
    expect(auto.plans.batch).toBeDefined();
    expect(auto.singleUpTo).toBe(Math.max(1, Math.floor(auto.plans.batch!.cost / auto.plans.single!.cost)));
    expect(batch).toMatchObject({ packing: 'batch', galoisSteps: [], singleUpTo: 0 });
    expect(batch.plans.single).toBeUndefined();
    // Calibration does not depend on the packing: the three calibrated models are the same.
    expect(Buffer.from(await readFile(p('auto_calibrated.onnx'))).equals(Buffer.from(calibratedBytes))).toBe(true);
    expect(server.galoisSteps).toEqual(plan.galoisSteps);

    const input = readNpy(await readFile(p('input.npy')));
    const ref = await reference(input);
    const magnitude = Math.max(1, ...Array.from(ref, Math.abs));
    const relu = runPlain(parseOnnx(await readFile(p('model.onnx'))), input);
    for (const which of ['single', 'auto'] as const) {
      const enc = await heEncrypt({ key: p(`key-${which}`), input: p('input.npy'), out: p(`in-${which}.enc`), packing: 'single' });
      expect(enc).toMatchObject({ packing: 'single', batch: 2, dims: SAMPLE });
      await heInference({ model: p(`${which}_calibrated.onnx`), key: p(`key-${which}.pub`), input: p(`in-${which}.enc`), out: p(`out-${which}.enc`) });
      const out = await heDecrypt({ key: p(`key-${which}`), input: p(`out-${which}.enc`), out: p(`out-${which}.npy`) });
      expect(out.dims).toEqual([2, 3]);
      // CKKS at Δ = 2^30 over three levels (Conv map, x², Gemm map) against float32 onnxruntime:
      // within 2e-3 of the output magnitude (max(1, max |ref|)).
      out.data.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(2e-3 * magnitude));
      // And close to the Relu model up to the fitted polynomial's error (32 terms in the Gemm).
      out.data.forEach((v, i) => expect(Math.abs(v - relu.data[i]!)).toBeLessThan(40 * kp[which]!.activations[0]!.maxError + 1e-2));
      expect(Array.from(readNpy(await readFile(p(`out-${which}.npy`))).data)).toEqual(Array.from(out.data, (v) => Math.fround(v)));
    }

    // The files say how they are packed: input replicated every 64 slots, output at the plan's slots.
    const inFile = deserializeCiphertexts(client, await readFile(p('in-single.enc')), 'input');
    expect(inFile.meta).toEqual({ format: 'cipherml-he-tensor', packing: 'single', batch: 2, dims: SAMPLE, period: 64 });
    expect(inFile.vectors.length).toBe(2);
    const inSlots = client.decryptVector(inFile.vectors[1]!, client.slotCount);
    for (const j of [0, 35, 36, 63, 64, 64 + 35, client.slotCount - 29]) expect(Math.abs(inSlots[j]! - (j % 64 < PER ? Math.fround(input.data[PER + (j % 64)]!) : 0))).toBeLessThan(1e-3);
    const outFile = deserializeCiphertexts(client, await readFile(p('out-single.enc')), 'input');
    expect(outFile.meta).toEqual({ format: 'cipherml-he-tensor', packing: 'single', batch: 2, dims: [3], slots: plan.outputSlots });
    for (const v of [...inFile.vectors, ...outFile.vectors]) v.delete();

    // Lower level, no files: encryptSingle → inferBytes → decryptOutput gives the same numbers.
    const bytes = inferBytes(server, calibrated, encryptSingle(client, samples(input), SAMPLE));
    const again = decryptOutput(client, bytes);
    expect(again.dims).toEqual([2, 3]);
    again.data.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(2e-3 * magnitude));
    expect(server.liveVectors).toBe(0);
    expect(client.liveVectors).toBe(0);

    // key.pub evaluates but is not a secret key: refused for its kind, whatever its mode.
    expect(await codeOfAsync(() => heDecrypt({ key: p('key-single.pub'), input: p('out-single.enc'), out: p('pub.npy') }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    await copyFile(p('key-single.pub'), p('pub-600'));
    await chmod(p('pub-600'), 0o600);
    expect(await codeOfAsync(() => heDecrypt({ key: p('pub-600'), input: p('out-single.enc'), out: p('pub.npy') }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(await exists('pub.npy')).toBe(false);
  });
});

describe('choosePacking and the key set hints', () => {
  it('auto: single up to singleUpTo samples, batch beyond; batch-only and single-only key sets refuse the other plan', async () => {
    const auto = await readSecretKeyFile(p('key-auto'));
    const batch = await readSecretKeyFile(p('key-batch'));
    try {
      const upTo = kp.auto!.singleUpTo;
      expect(upTo).toBeGreaterThanOrEqual(1);
      expect(auto.metadata).toEqual({ packing: 'auto', singleUpTo: upTo, inputDims: [null, ...SAMPLE], outputRange: kp.auto!.outputRange });
      expect(choosePacking(auto, 1)).toBe('single');
      expect(choosePacking(auto, upTo)).toBe('single');
      expect(choosePacking(auto, upTo + 1)).toBe('batch');
      expect(choosePacking(auto, 1, 'batch')).toBe('batch');
      expect(choosePacking(auto, 1000, 'single')).toBe('single');

      expect(batch.metadata).toEqual({ packing: 'batch', singleUpTo: 0, inputDims: [null, ...SAMPLE], outputRange: kp.batch!.outputRange });
      expect(choosePacking(batch, 1)).toBe('batch');
      expect(choosePacking(batch, 1, 'batch')).toBe('batch');
      let err: unknown;
      try {
        choosePacking(batch, 1, 'single');
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'packing', details: { supported: 'batch', requested: 'single' } });

      expect(client.metadata).toEqual({ packing: 'single', singleUpTo: kp.single!.singleUpTo, inputDims: [null, ...SAMPLE], outputRange: kp.single!.outputRange });
      expect(choosePacking(client, 1)).toBe('single');
      expect(choosePacking(client, 100_000)).toBe('single'); // a single-only key set never falls back to batch
      expect(() => choosePacking(client, 1, 'batch')).toThrow(expect.objectContaining({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'packing' }) as Error);
    } finally {
      auto.delete();
      batch.delete();
    }

    // The same choices through he encrypt (the number of samples is the .npy's leading axis).
    expect(kp.auto!.singleUpTo).toBe(2); // so one.npy and input.npy go single, three.npy goes batch
    expect(await heEncrypt({ key: p('key-auto'), input: p('one.npy'), out: p('auto-1.enc') })).toMatchObject({ packing: 'single', batch: 1 });
    expect(await heEncrypt({ key: p('key-auto'), input: p('input.npy'), out: p('auto-2.enc') })).toMatchObject({ packing: 'single', batch: 2 });
    expect(await heEncrypt({ key: p('key-auto'), input: p('three.npy'), out: p('auto-3.enc') })).toMatchObject({ packing: 'batch', batch: 3 });
    expect(await heEncrypt({ key: p('key-single'), input: p('three.npy'), out: p('single-3.enc') })).toMatchObject({ packing: 'single', batch: 3 });
    expect(await heEncrypt({ key: p('key-batch'), input: p('one.npy'), out: p('batch-1.enc') })).toMatchObject({ packing: 'batch', batch: 1 });
    expect(await codeOfAsync(() => heEncrypt({ key: p('key-batch'), input: p('one.npy'), out: p('batch-single.enc'), packing: 'single' }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(await codeOfAsync(() => heEncrypt({ key: p('key-single'), input: p('one.npy'), out: p('single-batch.enc'), packing: 'batch' }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(await exists('batch-single.enc')).toBe(false);
    expect(await exists('single-batch.enc')).toBe(false);

    // An auto key set runs both plans: the one-sample single file and the three-sample batch file.
    const one = readNpy(await readFile(p('one.npy')));
    const three = readNpy(await readFile(p('three.npy')));
    const [ref1, ref3] = [await reference(one), await reference(three)];
    for (const [n, ref] of [[1, ref1], [3, ref3]] as const) {
      await heInference({ model: p('auto_calibrated.onnx'), key: p('key-auto.pub'), input: p(`auto-${n}.enc`), out: p(`auto-${n}.out`) });
      const out = await heDecrypt({ key: p('key-auto'), input: p(`auto-${n}.out`), out: p(`auto-${n}.npy`) });
      expect(out.dims).toEqual([n, 3]);
      const magnitude = Math.max(1, ...Array.from(ref, Math.abs));
      out.data.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(2e-3 * magnitude));
    }
  });
});

describe('bad inputs on the single path: typed errors, no output file', () => {
  it('truncated and tampered ciphertext files', async () => {
    const enc = await readFile(p('in-single.enc'));
    await writeFile(p('trunc.enc'), enc.subarray(0, enc.length >> 1));
    await writeFile(p('trunc-crc.enc'), enc.subarray(0, enc.length - 1));
    expect(await infer('trunc.enc', 'o-trunc.enc')).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    expect(await infer('trunc-crc.enc', 'o-trunc-crc.enc')).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    const tampered = Buffer.from(enc);
    tampered[tampered.length - 100] = tampered[tampered.length - 100]! ^ 1;
    await writeFile(p('tampered.enc'), tampered);
    expect(await infer('tampered.enc', 'o-tampered.enc')).toBe('CIPHERML_E_FORMAT_CORRUPT');
    // A flipped byte in the SEAL ciphertext header behind a recomputed CRC: SEAL refuses it.
    const sealHeader = reframe(enc, (raw) => {
      const at = sections(raw)[4]!; // version, meta, count, length, ciphertext 0
      raw[at] = raw[at]! ^ 0xff;
    });
    await writeFile(p('seal.enc'), sealHeader);
    expect(await infer('seal.enc', 'o-seal.enc')).toBe('CIPHERML_E_CKKS_CIPHERTEXT_INVALID');
    // A count that disagrees with the sections behind a recomputed CRC.
    const count = reframe(enc, (raw) => new DataView(raw.buffer).setUint32(sections(raw)[2]!, 3));
    expect(codeOf(() => inferBytes(server, calibrated, count))).toBe('CIPHERML_E_FORMAT_CORRUPT');
    for (const o of ['o-trunc.enc', 'o-trunc-crc.enc', 'o-tampered.enc', 'o-seal.enc']) expect(await exists(o)).toBe(false);

    // The output side: a truncated single output at decrypt.
    const out = await readFile(p('out-single.enc'));
    await writeFile(p('out-trunc.enc'), out.subarray(0, out.length - 10));
    expect(await codeOfAsync(() => heDecrypt({ key: p('key-single'), input: p('out-trunc.enc'), out: p('d-trunc.npy') }))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    expect(await exists('d-trunc.npy')).toBe(false);
    expect(server.liveVectors).toBe(0);
  });

  it('a file encrypted under another key set', async () => {
    await heKeygen({ keyParams: p('kp-single.json'), out: p('other') });
    await heEncrypt({ key: p('other'), input: p('input.npy'), out: p('other.enc'), packing: 'single' });
    let err: unknown;
    try {
      await heInference({ model: p('single_calibrated.onnx'), key: p('key-single.pub'), input: p('other.enc'), out: p('o-other.enc') });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CIPHERML_E_KEY_MISMATCH', param: 'input' });
    expect(await exists('o-other.enc')).toBe(false);
    expect(await codeOfAsync(() => heDecrypt({ key: p('other'), input: p('out-single.enc'), out: p('d-other.npy') }))).toBe('CIPHERML_E_KEY_MISMATCH');
    expect(await exists('d-other.npy')).toBe(false);
  });

  it('a wrong input shape', async () => {
    // keygen records the model's input shape in the key file, so he encrypt refuses a wrong shape
    // before encrypting; a file of the wrong shape made without it is refused by he inference
    // before any ciphertext arithmetic.
    const wrong: [string, number[]][] = [['small-img', [2, 1, 5, 5]], ['flat', [2, PER]], ['wide', [2, 1, 6, 7]]];
    for (const [name, dims] of wrong) {
      await writeFile(p(`${name}.npy`), writeNpy({ dims, data: new Float64Array(dims.reduce((x, y) => x * y, 1)) }));
      expect(await codeOfAsync(() => heEncrypt({ key: p('key-single'), input: p(`${name}.npy`), out: p(`${name}.enc`), packing: 'single' }))).toBe('CIPHERML_E_INFERENCE_INPUT_SHAPE');
      expect(await exists(`${name}.enc`)).toBe(false);
      const per = dims.slice(1).reduce((x, y) => x * y, 1);
      await writeFile(p(`${name}.enc`), encryptSingle(client, [new Float64Array(per), new Float64Array(per)], dims.slice(1)));
      expect(await infer(`${name}.enc`, `o-${name}.enc`)).toBe('CIPHERML_E_INFERENCE_INPUT_SHAPE');
      expect(await exists(`o-${name}.enc`)).toBe(false);
    }
    // One sample without its batch axis is a batch of one.
    await writeFile(p('one.npy'), writeNpy({ dims: SAMPLE, data: new Float64Array(PER).fill(0.5) }));
    expect(await heEncrypt({ key: p('key-single'), input: p('one.npy'), out: p('one.enc') })).toMatchObject({ batch: 1, dims: SAMPLE, packing: 'single' });
    // Lower level: packing a sample of the wrong length, an empty batch.
    const plan = compileSingle(calibrated);
    let err: unknown;
    try {
      packSingleInput(plan, new Float64Array(35), client.slotCount);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CIPHERML_E_INFERENCE_INPUT_SHAPE', param: 'input', details: { expected: PER, actual: 35 } });
    expect(codeOf(() => encryptSingle(client, [], SAMPLE))).toBe('CIPHERML_E_INFERENCE_INPUT_SHAPE');
    // A sample wider than the slots of the key set.
    expect(codeOf(() => encryptSingle(client, [new Float64Array(client.slotCount + 1)], [client.slotCount + 1]))).toBe('CIPHERML_E_KEYPARAMS_TOO_SMALL');
  });

  it('a public key without the Galois keys the plan needs', async () => {
    const params = kp.single!.params;
    const noGalois = await CkksContext.create(params, { galoisSteps: [] });
    const steps = kp.single!.galoisSteps;
    const missingOne = await CkksContext.create(params, { galoisSteps: steps.slice(0, -1) });
    try {
      let err: unknown;
      try {
        prepareSingle(noGalois, calibrated);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'CIPHERML_E_CKKS_GALOIS_KEY_MISSING', param: 'key', details: { missing: steps } });
      try {
        prepareSingle(missingOne, calibrated);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'CIPHERML_E_CKKS_GALOIS_KEY_MISSING', details: { missing: [steps.at(-1)] } });
      const input = readNpy(await readFile(p('input.npy')));
      const bytes = encryptSingle(noGalois, samples(input), SAMPLE);
      expect(codeOf(() => inferBytes(noGalois, calibrated, bytes))).toBe('CIPHERML_E_CKKS_GALOIS_KEY_MISSING');
      expect(noGalois.liveVectors).toBe(0);
      // A context made without packing hints (no metadata) is taken as a batch-only key set.
      expect(choosePacking(noGalois, 1)).toBe('batch');
      // The same through files: key.pub without Galois keys, a single file made under it.
      await writeKeyFiles(p('nogal'), noGalois);
      await writeFile(p('nogal.enc'), bytes);
      expect(await infer('nogal.enc', 'o-nogal.enc', 'nogal.pub')).toBe('CIPHERML_E_CKKS_GALOIS_KEY_MISSING');
      expect(await exists('o-nogal.enc')).toBe(false);
    } finally {
      noGalois.delete();
      missingOne.delete();
    }
  });

  it('a key set too small for the model', async () => {
    const small = JSON.parse(await readFile(p('kp-single.json'), 'utf8')) as { params: { coeffModulusBits: number[] } };
    const bits = small.params.coeffModulusBits;
    small.params.coeffModulusBits = [bits[0]!, bits[1]!, bits.at(-1)!]; // one level, the plan needs 3
    await writeFile(p('kp-small.json'), JSON.stringify(small));
    await heKeygen({ keyParams: p('kp-small.json'), out: p('small') });
    await heEncrypt({ key: p('small'), input: p('one.npy'), out: p('small.enc'), packing: 'single' });
    let err: unknown;
    try {
      await heInference({ model: p('single_calibrated.onnx'), key: p('small.pub'), input: p('small.enc'), out: p('o-small.enc') });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CIPHERML_E_KEYPARAMS_TOO_SMALL', param: 'key', details: { depth: 3, levels: 1 } });
    expect(await exists('o-small.enc')).toBe(false);
    // Parameters with fewer slots than the plan's widest period.
    try {
      compileSingle(calibrated, 16);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CIPHERML_E_KEYPARAMS_TOO_SMALL', param: 'params', details: { slots: 64, slotCount: 16 } });
  });

  it('hand-edited single metadata', async () => {
    const plan = compileSingle(calibrated, client.slotCount);
    const one = readNpy(await readFile(p('one.npy')));
    const packed = packSingleInput(plan, one.data, client.slotCount);
    // The meta the real encrypt writes runs (the control), every edit is refused.
    const good = encryptToBytes(client, [packed], singleMeta({}));
    expect(decryptOutput(client, inferBytes(server, calibrated, good)).dims).toEqual([1, 3]);
    const cases: [Record<string, unknown>, string][] = [
      [singleMeta({ period: 128 }), 'CIPHERML_E_INFERENCE_INPUT_SHAPE'],
      [singleMeta({ period: 32 }), 'CIPHERML_E_INFERENCE_INPUT_SHAPE'],
      [singleMeta({ period: undefined }), 'CIPHERML_E_INFERENCE_INPUT_SHAPE'],
      [singleMeta({ dims: [1, 6, 5] }), 'CIPHERML_E_INFERENCE_INPUT_SHAPE'],
      [singleMeta({ batch: 2 }), 'CIPHERML_E_FORMAT_CORRUPT'],
      [singleMeta({ batch: 0 }), 'CIPHERML_E_FORMAT_UNSUPPORTED'],
      [singleMeta({ packing: 'diagonal' }), 'CIPHERML_E_FORMAT_UNSUPPORTED'],
    ];
    for (const [meta, code] of cases) expect(codeOf(() => inferBytes(server, calibrated, encryptToBytes(client, [packed], meta))), JSON.stringify(meta)).toBe(code);
    expect(server.liveVectors).toBe(0);
    // Through the files: a forged period.
    await writeFile(p('period.enc'), encryptToBytes(client, [packed], singleMeta({ period: 128 })));
    let err: unknown;
    try {
      await heInference({ model: p('single_calibrated.onnx'), key: p('key-single.pub'), input: p('period.enc'), out: p('o-period.enc') });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CIPHERML_E_INFERENCE_INPUT_SHAPE', param: 'input' });
    expect(await exists('o-period.enc')).toBe(false);
    // A forged single output: a slot outside the ciphertext, or fewer slots than dims.
    for (const [i, slots] of [[client.slotCount], [0, 1]].entries()) {
      await writeFile(p(`bad-out-${i}.enc`), encryptToBytes(client, [new Float64Array(4)], { format: 'cipherml-he-tensor', packing: 'single', batch: 1, dims: [i === 0 ? 1 : 3], slots }));
      expect(await codeOfAsync(() => heDecrypt({ key: p('key-single'), input: p(`bad-out-${i}.enc`), out: p(`d-bad-${i}.npy`) }))).toBe('CIPHERML_E_FORMAT_CORRUPT');
      expect(await exists(`d-bad-${i}.npy`)).toBe(false);
    }
    expect(client.liveVectors).toBe(0);
  });
});

describe('existing files are never overwritten', () => {
  it('a repeated or failing command leaves the existing output alone (CIPHERML_E_FILE_EXISTS)', async () => {
    const snapshot = async (names: string[]): Promise<Buffer[]> => Promise.all(names.map((n) => readFile(p(n))));
    const names = ['in-single.enc', 'out-single.enc', 'out-single.npy', 'key-single', 'key-single.pub', 'kp-single.json', 'single_calibrated.onnx'];
    const before = await snapshot(names);

    expect(await codeOfAsync(() => heEncrypt({ key: p('key-single'), input: p('input.npy'), out: p('in-single.enc'), packing: 'single' }))).toBe('CIPHERML_E_FILE_EXISTS');
    let err: unknown;
    try {
      await heInference({ model: p('single_calibrated.onnx'), key: p('key-single.pub'), input: p('in-single.enc'), out: p('out-single.enc') });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CIPHERML_E_FILE_EXISTS', param: 'path', details: { path: p('out-single.enc') } });
    // An existing output is refused before any work, whatever the input.
    expect(await infer('trunc.enc', 'out-single.enc')).toBe('CIPHERML_E_FILE_EXISTS');
    expect(await codeOfAsync(() => heDecrypt({ key: p('key-single'), input: p('out-single.enc'), out: p('out-single.npy') }))).toBe('CIPHERML_E_FILE_EXISTS');
    expect(await codeOfAsync(() => heKeygen({ keyParams: p('kp-single.json'), out: p('key-single') }))).toBe('CIPHERML_E_FILE_EXISTS');
    expect(await codeOfAsync(() => heKeyParams({ model: p('single.onnx'), calibration: p('calib.npy'), out: p('kp-single.json'), packing: 'single' }))).toBe('CIPHERML_E_FILE_EXISTS');

    const after = await snapshot(names);
    names.forEach((n, i) => expect(after[i]!.equals(before[i]!), n).toBe(true));
    expect((await stat(p('key-single'))).mode & 0o777).toBe(0o600);
    // The untouched files still work together.
    const out = await heDecrypt({ key: p('key-single'), input: p('out-single.enc'), out: p('out-again.npy') });
    expect(Array.from(out.data, (v) => Math.fround(v))).toEqual(Array.from(readNpy(after[2]!).data));

    // With overwrite the file is replaced (fresh encryption randomness: other bytes).
    await heEncrypt({ key: p('key-single'), input: p('input.npy'), out: p('in-single.enc'), packing: 'single', overwrite: true });
    expect((await readFile(p('in-single.enc'))).equals(before[0]!)).toBe(false);
    // A command writing two files writes both or neither: a stray key.pub blocks keygen before the
    // secret key is written; an existing keyparams blocks keyparams before the calibrated model.
    await writeFile(p('half.pub'), 'x');
    expect(await codeOfAsync(() => heKeygen({ keyParams: p('kp-single.json'), out: p('half') }))).toBe('CIPHERML_E_FILE_EXISTS');
    await expect(stat(p('half'))).rejects.toThrow();
    await copyFile(p('single.onnx'), p('fresh.onnx'));
    expect(await codeOfAsync(() => heKeyParams({ model: p('fresh.onnx'), calibration: p('calib.npy'), out: p('kp-single.json'), packing: 'single' }))).toBe('CIPHERML_E_FILE_EXISTS');
    await expect(stat(p('fresh_calibrated.onnx'))).rejects.toThrow();
    // No temporary files left behind by the refused writes.
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

/** The error code of `he inference` on the calibrated model (undefined if it succeeds). */
function infer(input: string, out: string, key = 'key-single.pub'): Promise<string | undefined> {
  return codeOfAsync(() => heInference({ model: p('single_calibrated.onnx'), key: p(key), input: p(input), out: p(out) }));
}
