import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CipherMLError } from '../core/errors.ts';
import { describeServerEvent, describeWorkerEvent } from '../fl/describe.ts';
import { keySizeFor } from '../fl/key-pinning.ts';
import type { WorkerEvent } from '../fl/worker.ts';
import type { ServerEvent } from '../fl/server.ts';
import { cli, freePort, waitForLine } from './homo-lr.ts';

/**
 * Federated LeNet-5 on partitioned MNIST (Flower's FedAvgHE example): a parameter server and one
 * worker process per client, talking gRPC over loopback exactly as on separate machines. Each
 * worker partitions the training set with the shared seed and keeps only its own part.
 */

/** Options of {@link runFlMnistDemo}. */
export interface FlMnistDemoOptions {
  readonly strategy: 'plain' | 'paillier' | 'secagg';
  readonly clients: number;
  /** iid | shards:K | dirichlet:α */
  readonly partition: string;
  readonly dataset: 'mnist' | 'fashion-mnist';
  readonly rounds: number;
  readonly model?: string;
  readonly keyBits?: number;
  readonly trainLimit?: number;
  readonly testLimit?: number;
  readonly serverOptimizer?: string;
  readonly proximalMu?: number;
  readonly seed?: number;
  readonly runDir?: string;
  readonly onLine?: (line: string) => void;
}

/** The demo's result. */
export interface FlMnistDemoResult {
  readonly summary: Record<string, unknown>;
  readonly exitCodes: Readonly<Record<string, number | null>>;
}

/**
 * Runs the multi-process demo and returns the server's summary (test-set accuracy and loss of the
 * final global model).
 *
 * @example
 * ```ts
 * const { summary } = await runFlMnistDemo({ strategy: 'secagg', clients: 10, partition: 'dirichlet:0.5', dataset: 'mnist', rounds: 20 });
 * ```
 */
export async function runFlMnistDemo(options: FlMnistDemoOptions): Promise<FlMnistDemoResult> {
  const onLine = options.onLine ?? (() => undefined);
  const n = options.clients;
  if (!Number.isInteger(n) || n < 2 || n > 64) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected 2–64 clients, got ${n}`, { param: '--clients' });
  if (!Number.isInteger(options.rounds) || options.rounds < 1) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected at least 1 round, got ${options.rounds}`, { param: '--rounds' });
  const secret = randomBytes(24).toString('base64url');
  const runDir = options.runDir ?? join(process.cwd(), 'runs', `fl-mnist-${options.strategy}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(runDir, { recursive: true });
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const app = [
    '--dataset', options.dataset,
    '--partition', options.partition,
    '--num-clients', String(n),
    '--model', options.model ?? 'lenet5',
    '--train-limit', String(options.trainLimit ?? 0),
    '--test-limit', String(options.testLimit ?? 0),
    '--seed', String(options.seed ?? 42),
    '--server-optimizer', options.serverOptimizer ?? 'fedavg',
    '--proximal-mu', String(options.proximalMu ?? 0),
    '--learning-rate', '0.01',
  ];
  const children: { name: string; child: ChildProcess; exit: Promise<number | null> }[] = [];
  try {
    let summary: Record<string, unknown> | null = null;
    let listening = false;
    const s = cli(
      [
        'fl', 'nn-server', ...app,
        '--address', address,
        '--strategy', options.strategy,
        '--key-bits', String(options.keyBits ?? 2048),
        '--num-server-rounds', String(options.rounds),
        '--min-available-clients', String(n),
        '--min-fit-clients', String(n),
        '--min-evaluate-clients', '0',
        '--fraction-evaluate', '0',
        '--round-timeout', '3600',
        '--join-timeout', '600',
        '--run-dir', runDir,
        '--token', secret,
        ...(options.strategy === 'secagg' ? ['--cipher-time-window', '120000'] : []),
        '--json',
      ],
      'server',
      onLine,
      (o) => {
        if (o['event'] === 'listening') listening = true;
        if (o['event'] === 'data') onLine(`[server] ${String(o['line'])}`);
        else if ('accuracy' in o && 'strategy' in o) summary = o;
        else if (typeof o['event'] === 'string' && o['event'] !== 'finished' && o['event'] !== 'round-start') onLine(`[server] ${describeServerEvent({ ...o, type: o['event'] } as unknown as ServerEvent)}`);
      },
    );
    children.push({ name: 'server', ...s });
    await waitForLine(() => listening || s.child.exitCode !== null, 'server', 300_000);
    if (!listening) throw new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `the server exited with code ${String(s.child.exitCode)} before listening (see its output above)`, { param: 'server' });
    const workers = Array.from({ length: n }, (_, i) => {
      const id = String(i + 1);
      // 1024-bit keys are for quick tests only; workers refuse them unless told this is a test.
      const keyBitsArgs = options.strategy === 'paillier' ? keySizeFor(options.keyBits ?? 2048, '--key-bits').flags : [];
      return cli(['fl', 'nn-worker', ...app, ...keyBitsArgs, '--id', id, '--server', address, '--token', secret, '--json'], `worker ${id}`, onLine, (o) => {
        if (o['type'] === 'fit' || o['type'] === 'task-failed' || o['type'] === 'finished' || 'histogram' in o) {
          onLine(`[worker ${id}] ${'histogram' in o ? `${String(o['images'])} images, labels [${(o['histogram'] as number[]).join(' ')}]` : describeWorkerEvent(id, o as unknown as WorkerEvent)}`);
        }
      });
    });
    workers.forEach((w, i) => children.push({ name: `worker ${i + 1}`, ...w }));
    const [serverCode, ...workerCodes] = await Promise.all([s.exit, ...workers.map((w) => w.exit)]);
    const exitCodes: Record<string, number | null> = { server: serverCode ?? null };
    workerCodes.forEach((c, i) => (exitCodes[`worker ${i + 1}`] = c ?? null));
    if (serverCode !== 0 || summary === null) throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `the server exited with code ${serverCode} before finishing (see its output above)`, { param: 'server', details: exitCodes });
    return { summary: { ...(summary as Record<string, unknown>), processes: n + 1 }, exitCodes };
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGTERM');
    await Promise.all(children.map((c) => c.exit));
  }
}
