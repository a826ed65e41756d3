import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activationOptions, parseReluMode } from '../src/cli/he.ts';
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
