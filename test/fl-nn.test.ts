import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRunConfig } from '../src/fl/config.ts';
import { readNnApp, resolveNnApp } from '../src/fl/apps/nn-config.ts';
import { nnRunConfig, simulateNn } from '../src/fl/apps/nn-run.ts';
import { packingFor } from '../src/fl/run.ts';
import { PackingLayout } from '../src/paillier/index.ts';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function run(strategy: 'plain' | 'paillier' | 'secagg', extra: Record<string, unknown> = {}) {
  const runDir = await mkdtemp(join(tmpdir(), 'fl-nn-'));
  dirs.push(runDir);
  const config = resolveRunConfig({
    flags: { strategy, numServerRounds: 1, minFitClients: 3, minAvailableClients: 3, minEvaluateClients: 0, fractionEvaluate: 0, keyBits: 1024, runDir, seed: 7, learningRate: 0.05, ...(strategy === 'secagg' ? { cipherTimeWindow: 20000 } : {}) },
  });
  const app = resolveNnApp({ model: 'lenet5', partition: 'dirichlet:1', 'num-clients': 3, 'train-limit': 240, 'test-limit': 200, ...extra });
  const { server } = await simulateNn(config, app);
  return { server, runDir };
}

describe('federated LeNet-5 on MNIST (in-process, real strategies)', () => {
  it('plain, Paillier and secure aggregation carry the 61,706 LeNet parameters to the same model', async () => {
    const plain = await run('plain');
    const paillier = await run('paillier');
    const secagg = await run('secagg');
    for (const r of [plain, paillier, secagg]) {
      expect(r.server.rounds).toBe(1);
      expect(r.server.final?.serverAccuracy).toBeGreaterThan(0.1);
      const history = JSON.parse(await readFile(join(r.runDir, 'history.json'), 'utf8')) as { rounds: unknown[] };
      expect(history.rounds).toHaveLength(1);
    }
    // Same seed, same data: the encrypted/masked sums differ from plain only by fixed-point rounding.
    expect(Math.abs(paillier.server.final!.serverAccuracy! - plain.server.final!.serverAccuracy!)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(secagg.server.final!.serverAccuracy! - plain.server.final!.serverAccuracy!)).toBeLessThanOrEqual(0.02);
  }, 240_000);

  it('FedAdam runs on top of secure aggregation; the bundled run.toml parses', async () => {
    const r = await run('secagg', { 'server-optimizer': 'fedadam', 'server-learning-rate': 0.01, model: 'mlp' });
    expect(r.server.strategy).toContain('fedadam');
    const app = await readNnApp('examples/fl-mnist/run.toml');
    expect(app?.model).toBe('lenet5');
    expect(app?.partition).toEqual({ kind: 'dirichlet', alpha: 0.5 });
  }, 120_000);
});

describe('a worker whose model differs from the server\'s (real gRPC on loopback)', () => {
  it('is refused at join with CIPHERML_E_MODEL_MISMATCH naming both shapes, and the server counts no worker', async () => {
    const { loadEngine } = await import('../src/ml/nn/engine.ts');
    const { MODELS } = await import('../src/ml/nn/models.ts');
    const { initialModel, nnClient } = await import('../src/fl/apps/nn.ts');
    const { FlServer } = await import('../src/fl/server.ts');
    const { PlainFedAvg } = await import('../src/fl/strategy.ts');
    const { serverSettings } = await import('../src/fl/run.ts');
    const { createRpcTransport } = await import('../src/fl/transport.ts');
    const { runWorker } = await import('../src/fl/worker.ts');
    const { tf } = await loadEngine('wasm');
    const runDir = await mkdtemp(join(tmpdir(), 'fl-nn-mismatch-'));
    dirs.push(runDir);
    const config = resolveRunConfig({ flags: { runDir, numServerRounds: 1, minAvailableClients: 1, minFitClients: 1, joinTimeout: 30 } });
    const joined: string[] = [];
    const server = new FlServer({ settings: serverSettings(config, { address: '127.0.0.1:0' }), strategy: new PlainFedAvg(), initialModel: initialModel(MODELS.lenet5, 1), onEvent: (e) => e.type === 'joined' && joined.push(e.workerId) });
    const address = await server.listen();
    try {
      const images = { images: new Uint8Array(4 * 784), labels: Uint8Array.from([0, 1, 2, 3]), count: 4, rows: 28, cols: 28, classes: 10 };
      const mlp = nnClient(tf, MODELS.mlp, images, { localEpochs: 1, batchSize: 2, learningRate: 0.1, momentum: 0, proximalMu: 0, seed: 1 });
      await expect(runWorker({ workerId: 'w1', token: '', client: mlp, transport: createRpcTransport({ address, maxMessageBytes: config.maxMessageBytes }) })).rejects.toMatchObject({
        code: 'CIPHERML_E_MODEL_MISMATCH',
        message: expect.stringContaining('fc1.weight'),
      });
      expect(joined).toEqual([]);
    } finally {
      await server.close();
    }
  }, 60_000);
});

describe('Paillier slot headroom of neural-network runs', () => {
  it('is 2^⌈log₂ num-clients⌉ contributions (at least min-available-clients) unless packing-max-contributions is set', () => {
    const config = resolveRunConfig({ flags: { strategy: 'paillier', minFitClients: 10, minAvailableClients: 10 } });
    expect(nnRunConfig(config, resolveNnApp({ 'num-clients': 10 })).packingMaxContributions).toBe(16);
    expect(nnRunConfig(config, resolveNnApp({ 'num-clients': 16 })).packingMaxContributions).toBe(16);
    expect(nnRunConfig(config, resolveNnApp({ 'num-clients': 3 })).packingMaxContributions).toBe(10);
    const set = resolveRunConfig({ flags: { strategy: 'paillier', minFitClients: 10, minAvailableClients: 10, packingMaxContributions: 1000 } });
    expect(nnRunConfig(set, resolveNnApp({ 'num-clients': 10 })).packingMaxContributions).toBe(1000);
    expect(new PackingLayout(2048, packingFor(nnRunConfig(config, resolveNnApp({ 'num-clients': 10 })))).slotsPerCiphertext).toBe(56);
  });
});
