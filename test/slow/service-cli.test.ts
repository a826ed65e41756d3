import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'cipherml.js');

describe('cipherml serve / gateway CLI in separate processes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-svc-cli-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('creates tokens, serves, fits and predicts through the gateway CLI, and reports typed errors', async () => {
    const data = join(dir, 'data');
    const owner = await cli('serve', 'token', 'create', '--data', data, '--user', 'owner', '--role', 'owner');
    expect(owner.code).toBe(0);
    const ownerToken = owner.stdout.trim().split('\n').at(-1)!;
    expect(ownerToken).toMatch(/^cml_[A-Za-z0-9_-]{43}$/);
    const alice = (await cli('serve', 'token', 'create', '--data', data, '--user', 'alice')).stdout.trim().split('\n').at(-1)!;
    const badRole = await cli('serve', 'token', 'create', '--data', data, '--user', 'x', '--role', 'admin', '--json');
    expect(badRole.code).toBe(1);
    expect(JSON.parse(badRole.stdout).error).toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: '--role' });

    const server = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data', data, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const first = await new Promise<string>((resolve) => createInterface({ input: server.stdout }).once('line', resolve));
      const { url } = JSON.parse(first) as { url: string };
      expect((await fetch(`${url}/api/v1/m/1/deploy_model`, { method: 'POST', headers: { authorization: `Bearer ${ownerToken}` } })).status).toBe(200);

      const csv = (await readFile('examples/data/breast_homo_test.csv', 'utf8')).trim().split('\n');
      await writeFile(join(dir, 'x.csv'), `${csv.map((l) => l.split(',').slice(2).join(',')).join('\n')}\n`);
      await writeFile(join(dir, 'y.csv'), `y\n${csv.slice(1).map((l) => l.split(',')[1]).join('\n')}\n`);
      await writeFile(join(dir, 'model.json'), JSON.stringify({ coef_: [Array(30).fill(0)], intercept_: [0] }));
      await writeFile(join(dir, 'hp.json'), JSON.stringify({ numberOfEpochs: 2, learningRate: 0.1, numberOfFeatures: 30, logisticRegressionActivation: 'sigmoid_poly_3_approximation' }));
      const common = ['--service', url, '--token', alice, '--model', 'm/1', '--key-dir', join(dir, 'keys')];
      const fit = await cli('gateway', 'fit', ...common, '--model-file', join(dir, 'model.json'), '--hyper-params', join(dir, 'hp.json'), '--features', join(dir, 'x.csv'), '--labels', join(dir, 'y.csv'), '--out', join(dir, 'trained.json'), '--json');
      expect(fit.code).toBe(0);
      expect(JSON.parse(fit.stdout)).toMatchObject({ epochs: 2, refreshes: 1, rows: 114, features: 30 });
      expect(JSON.parse(fit.stdout).trainMs).toBeGreaterThan(0);
      const trained = JSON.parse(await readFile(join(dir, 'trained.json'), 'utf8')) as { coef_: number[][]; intercept_: number[] };
      expect(trained.coef_.length).toBe(1);
      expect(trained.coef_[0]!.length).toBe(30);
      expect(trained.intercept_.length).toBe(1);

      const pred = await cli('gateway', 'predict', ...common, '--features', join(dir, 'x.csv'), '--out', join(dir, 'p.csv'));
      expect(pred.code).toBe(0);
      const lines = (await readFile(join(dir, 'p.csv'), 'utf8')).trim().split('\n');
      expect(lines[0]).toBe('probability');
      expect(lines.length).toBe(115);
      for (const l of lines.slice(1)) expect(Number(l)).toBeGreaterThanOrEqual(0);

      await writeFile(join(dir, 'bad.csv'), 'a,b\n1,2\n1\n');
      const bad = await cli('gateway', 'predict', ...common, '--features', join(dir, 'bad.csv'), '--out', join(dir, 'p2.csv'), '--json');
      expect(bad.code).toBe(1);
      expect(JSON.parse(bad.stdout).error.code).toBe('CIPHERML_E_CSV_INVALID');
      expect(JSON.parse(bad.stdout).error.message).toContain('line 3');
      const wrongToken = await cli('gateway', 'predict', '--service', url, '--token', 'cml_nope', '--model', 'm/1', '--key-dir', join(dir, 'keys'), '--features', join(dir, 'x.csv'), '--out', join(dir, 'p3.csv'), '--json');
      expect(JSON.parse(wrongToken.stdout).error.code).toBe('CIPHERML_E_SERVICE_UNAUTHENTICATED');
      expect(JSON.parse(wrongToken.stdout).error.param).toBe('--token');

      // Refused before any key or ciphertext is made: a fresh key folder stays absent.
      const fresh = join(dir, 'fresh-keys');
      const fitArgs = ['--model-file', join(dir, 'model.json'), '--hyper-params', join(dir, 'hp.json'), '--labels', join(dir, 'y.csv'), '--out', join(dir, 'trained2.json'), '--json'];
      const swapped = await cli('gateway', 'fit', '--service', url, '--token', alice, '--model', 'm/1', '--key-dir', fresh, '--features', join(dir, 'y.csv'), ...fitArgs);
      expect(JSON.parse(swapped.stdout).error).toMatchObject({ code: 'CIPHERML_E_SHAPE_MISMATCH', param: '--features' });
      expect(JSON.parse(swapped.stdout).error.message).toContain('looks like the labels');
      const deadUrl = await cli('gateway', 'fit', '--service', 'http://127.0.0.1:1', '--token', alice, '--model', 'm/1', '--key-dir', fresh, '--features', join(dir, 'x.csv'), ...fitArgs);
      expect(JSON.parse(deadUrl.stdout).error).toMatchObject({ code: 'CIPHERML_E_PEER_UNAVAILABLE', param: '--service' });
      const badFitToken = await cli('gateway', 'fit', '--service', url, '--token', 'cml_nope', '--model', 'm/1', '--key-dir', fresh, '--features', join(dir, 'x.csv'), ...fitArgs);
      expect(JSON.parse(badFitToken.stdout).error).toMatchObject({ code: 'CIPHERML_E_SERVICE_UNAUTHENTICATED', param: '--token' });
      expect(existsSync(fresh)).toBe(false);
      // An existing --out is refused (and left as it was) unless --overwrite.
      const before = await readFile(join(dir, 'p.csv'), 'utf8');
      const again = await cli('gateway', 'predict', ...common, '--features', join(dir, 'x.csv'), '--out', join(dir, 'p.csv'), '--json');
      expect(JSON.parse(again.stdout).error).toMatchObject({ code: 'CIPHERML_E_FILE_EXISTS', param: '--out' });
      expect(await readFile(join(dir, 'p.csv'), 'utf8')).toBe(before);
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
  });
});
