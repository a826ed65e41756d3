import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSeal } from '../src/ckks/index.ts';
import { activationOptions, parseReluMode } from '../src/cli/he.ts';
import { evalFit } from '../src/inference/activations.ts';
import { GraphBuilder } from '../src/inference/builder.ts';
import { calibrate } from '../src/inference/calibrate.ts';
import { cli } from './helpers.ts';

// HE-MAN's keyparams flags (smile-ffg/he-man-tenseal, config.py: --relu-mode matching
// ^deg[1-9][0-9]*(_no_offset)?$ case-insensitively, --domain-mode min-max | mean-std) are accepted
// as aliases of the project's --degree / --activation-fit and --fit-domain; a bad value is a typed
// error naming the flag the user typed, before any calibration work or file is written.
const MODEL = new URL('../examples/he/lenet5_relu.onnx', import.meta.url).pathname;
const CALIB = new URL('../examples/he/calibration.npz', import.meta.url).pathname;

describe('he keyparams activation flags', () => {
  it('--relu-mode: HE-MAN\'s degN and degN_no_offset, the project\'s fits; anything else names the flag', () => {
    expect(parseReluMode('deg3')).toEqual({ degree: 3 });
    expect(parseReluMode('DEG4_no_offset')).toEqual({ degree: 4, zeroOffset: true });
    expect(parseReluMode('weighted')).toEqual({ fit: 'weighted' });
    expect(parseReluMode('minimax')).toEqual({ fit: 'minimax' });
    for (const bad of ['deg0', 'deg', 'deg4_offset', 'relu', 'deg17', '4']) {
      expect(() => parseReluMode(bad)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: '--relu-mode' }));
    }
  });

  it('project flags and aliases resolve to one option; bad values and disagreements name the flag', () => {
    expect(activationOptions({ reluMode: 'deg4_no_offset', domainMode: 'mean-std' })).toEqual({ degree: 4, zeroOffset: true, domain: 'mean-std' });
    expect(activationOptions({ degree: [4, 4, 2, 2], activationFit: 'minimax', fitDomain: 'symmetric' })).toEqual({ degree: [4, 4, 2, 2], fit: 'minimax', domain: 'symmetric' });
    expect(activationOptions({ reluMode: 'minimax', activationFit: 'minimax', domainMode: 'min-max', fitDomain: 'min-max' })).toEqual({ fit: 'minimax', domain: 'min-max' });
    const cases: [Parameters<typeof activationOptions>[0], string][] = [
      [{ domainMode: 'mean-sd' }, '--domain-mode'],
      [{ fitDomain: 'minmax' }, '--fit-domain'],
      [{ activationFit: 'chebyshev' }, '--activation-fit'],
      [{ reluMode: 'deg4', degree: 2 }, '--degree'],
      [{ reluMode: 'weighted', activationFit: 'minimax' }, '--activation-fit'],
      [{ domainMode: 'mean-std', fitDomain: 'min-max' }, '--fit-domain'],
    ];
    for (const [flags, flag] of cases) expect(() => activationOptions(flags)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: flag }));
  });

  it('calibrate: mean-std intervals, p(0) = 0 without offset, per-layer degrees, a wrong-length degree list refused', async () => {
    const b = new GraphBuilder(13);
    let v = b.node('Gemm', [b.input('x', [null, 1]), b.init('w', { dims: [1, 1], data: Float64Array.of(1) }), b.init('b', { dims: [1], data: Float64Array.of(0) })], {}, 'linear');
    v = b.node('Relu', [v], {}, 'relu1');
    v = b.node('Relu', [b.node('Sub', [v, b.init('half', { dims: [], data: Float64Array.of(0.5) })])], {}, 'relu2');
    b.output(v);
    const graph = b.graph();
    // Skewed inputs: 0 … 1 mostly, a few out to −4.
    const xs = Float64Array.from({ length: 200 }, (_, i) => (i < 190 ? i / 190 : -4 + (i - 190) * 0.1));
    const samples = { dims: [200, 1], data: xs };
    const seal = await loadSeal();
    const { keyParams } = calibrate(seal, graph, samples, { packing: 'batch', domain: 'mean-std', margin: 0, degree: [4, 2], zeroOffset: true });
    const [r1, r2] = keyParams.activations;
    const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length);
    expect(r1!.mean).toBeCloseTo(mean, 9);
    expect(r1!.std).toBeCloseTo(std, 9);
    expect(r1!.range[0]).toBeCloseTo(mean - 3 * std, 9);
    expect(r1!.range[1]).toBeCloseTo(mean + 3 * std, 9);
    expect(r1!.observed).toEqual([-4, 189 / 190]);
    expect([r1!.degree, r2!.degree]).toEqual([4, 2]);
    expect([r1!.depth, r2!.depth]).toEqual([2, 1]);
    for (const a of keyParams.activations) expect(evalFit(a, 0)).toBeCloseTo(0, 9);
    expect(() => calibrate(seal, graph, samples, { packing: 'batch', degree: [4, 4, 4] })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'degree' }));
    expect(() => calibrate(seal, graph, samples, { packing: 'batch', fit: 'remez' as 'minimax' })).toThrow(expect.objectContaining({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'fit' }));
  });

  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-he-flags-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the CLI: a bad --domain-mode is a typed error naming the flag, nothing written', async () => {
    const r = await cli('he', 'keyparams', '-m', MODEL, '-c', CALIB, '-o', join(dir, 'kp.json'), '--json', '--domain-mode', 'mean-sd');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!).error).toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: '--domain-mode' });
    expect(r.stderr).toContain('--domain-mode');
    expect(await readdir(dir)).toEqual([]);
  });
});
