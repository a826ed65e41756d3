import type { ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CipherMLError } from '../core/errors.ts';
import { describeServerEvent, describeWorkerEvent } from '../fl/describe.ts';
import { keySizeFor } from '../fl/key-pinning.ts';
import type { WorkerEvent } from '../fl/worker.ts';
import type { ServerEvent } from '../fl/server.ts';
import { cli, demoIdentities, freePort, waitForLine } from './homo-lr.ts';

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
  /** Folder of the four IDX files (default: the bundled copy). */
  readonly dataDir?: string;
  /**
   * Extra flags of worker `id`'s process (e.g. another --data-dir, to play a worker whose data
   * path is wrong).
   */
  readonly workerArgs?: (id: string) => readonly string[];
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
    ...(options.dataDir === undefined ? [] : ['--data-dir', options.dataDir]),
  ];
  // Identity mode: every party signs with its own key and pins the others (no shared run secret).
  const ids = await demoIdentities(runDir, [{ role: 'server', id: 'server' }, ...Array.from({ length: n }, (_, i) => ({ role: 'worker' as const, id: String(i + 1) }))]);
  const idArgs = (key: string) => ['--identity', ids.files.get(key)!, '--roster', ids.roster];
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
        ...idArgs('server:server'),
        ...(options.strategy === 'secagg' ? ['--cipher-time-window', '120000'] : []),
        '--json',
      ],
      'server',
      onLine,
      (o) => {
        if (o['event'] === 'listening') listening = true;
        if (o['event'] === 'data') onLine(`[server] ${String(o['line'])}`);
        else if (o['event'] === 'identity') onLine(`[server] identity mode as server ${String(o['id'])} (${String(o['fingerprint']).slice(0, 16)}…)`);
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
      return cli(['fl', 'nn-worker', ...app, ...keyBitsArgs, '--id', id, '--server', address, ...idArgs(`worker:${id}`), ...(options.workerArgs?.(id) ?? []), '--json'], `worker ${id}`, onLine, (o) => {
        if (o['type'] === 'fit' || o['type'] === 'task-failed' || o['type'] === 'finished' || 'histogram' in o) {
          onLine(`[worker ${id}] ${'histogram' in o ? `${String(o['images'])} images, labels [${(o['histogram'] as number[]).join(' ')}]` : describeWorkerEvent(id, o as unknown as WorkerEvent)}`);
        }
      });
    });
    workers.forEach((w, i) => children.push({ name: `worker ${i + 1}`, ...w }));
    const parties = children.filter((c) => c.name === 'server' || c.name.startsWith('worker '));
    const all = Promise.all(parties.map((c) => c.exit));
    // Every party must train every round (min-fit-clients = clients): one that exits with an error
    // before the server has finished stalls the run until the round timeout, so stop there.
    const failed = new Promise<void>((resolve) => {
      for (const c of parties) void c.exit.then((code) => (code !== 0 && summary === null ? resolve() : undefined));
    });
    if ((await Promise.race([all.then(() => 'done' as const), failed.then(() => 'failed' as const)])) === 'failed') {
      // One cause (a wrong path, a refused key) usually stops several parties at once: collect them.
      await Promise.race([all, new Promise((r) => setTimeout(r, 1500))]);
      const gone = parties.filter((c) => c.child.exitCode !== null && c.child.exitCode !== 0 || c.child.signalCode !== null);
      const exitCodes = Object.fromEntries(gone.map((c) => [c.name, c.child.exitCode]));
      const list = gone.map((c) => `${c.name} (exit code ${c.child.exitCode ?? c.child.signalCode})`).join(', ');
      throw new CipherMLError('CIPHERML_E_DEMO_PARTY_FAILED', `${list} exited before the run finished (see ${gone.length === 1 ? 'its' : 'their'} output above); the other processes were stopped`, {
        param: gone[0]?.name ?? 'worker',
        details: { failed: gone.map((c) => c.name), exitCodes },
      });
    }
    const codes = await all;
    const exitCodes: Record<string, number | null> = Object.fromEntries(parties.map((c, i) => [c.name, codes[i] ?? null]));
    if (codes[0] !== 0 || summary === null) throw new CipherMLError('CIPHERML_E_ROUND_FAILED', `the server exited with code ${codes[0]} before finishing (see its output above)`, { param: 'server', details: exitCodes });
    return { summary: { ...(summary as Record<string, unknown>), processes: n + 1, roster: ids.roster }, exitCodes };
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGTERM');
    await Promise.all(children.map((c) => c.exit));
  }
}
