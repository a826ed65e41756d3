import { createRouterTransport, type Interceptor } from '@connectrpc/connect';
import { CipherMLError } from '../core/errors.ts';
import { Roster, generateIdentity, publicIdentity, type Identity } from '../core/identity.ts';
import { generatePaillierKeyPair } from '../paillier/index.ts';
import { KeyAuthority } from './authority.ts';
import type { RunConfig } from './config.ts';
import { deriveToken, type NamedTensor } from './protocol.ts';
import { buildStrategy, serverSettings } from './run.ts';
import { FlServer, type EvalMetrics, type RunSummary, type ServerEvent, type ServerSettings } from './server.ts';
import type { Strategy } from './strategy.ts';
import { keySizeFor } from './key-pinning.ts';
import { runWorker, type FlClient, type WorkerEvent, type WorkerOptions, type WorkerSummary } from './worker.ts';

/**
 * All parties in one process: the same server, strategy, worker and key-authority code as the
 * multi-process deployment, connected by in-memory ConnectRPC transports instead of sockets.
 * Every party runs in identity mode with a fresh in-memory identity, pinned in one roster; secure
 * aggregation (pw, secagg+) runs its actively secure variant with the workers' identities.
 */

/** Options of {@link simulate}. */
export interface SimulationOptions {
  readonly config: RunConfig;
  readonly clients: readonly { readonly id: string; readonly client: FlClient; readonly dropAt?: WorkerOptions['dropAt'] }[];
  readonly evaluate?: (tensors: readonly NamedTensor[]) => EvalMetrics | Promise<EvalMetrics>;
  readonly onServerEvent?: (e: ServerEvent) => void;
  readonly onWorkerEvent?: (id: string, e: WorkerEvent) => void;
  /** Interceptors on the server's RPC handlers (tests record what the server receives). */
  readonly serverInterceptors?: Interceptor[];
  /** Wraps the strategy built from the config (server optimizers, src/fl/strategies-opt.ts). */
  readonly wrapStrategy?: (strategy: Strategy) => Strategy;
  /** The initial global model (default: the first worker's parameters). */
  readonly initialModel?: readonly NamedTensor[];
  /** Server settings beyond the run config (e.g. staleAfterMs for workers busy for minutes). */
  readonly settings?: Partial<ServerSettings>;
}

/**
 * Refuses what one process cannot simulate: key-holder "threshold" needs a dealer and k-of-L key
 * holders, each a separate party with its own key share and worker roster, and workers pinned to
 * the dealt key; `simulate` has none of them.
 *
 * @example
 * ```ts
 * assertSimulable(config); // throws CIPHERML_E_CONFIG_INVALID for key-holder "threshold"
 * ```
 */
export function assertSimulable(config: Pick<RunConfig, 'keyHolder'>): void {
  if (config.keyHolder === 'threshold') {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', '--key-holder threshold (run-config key key-holder) is not supported by `cipherml simulate`: its k-of-L key holders and the dealer are separate parties, each with its own key share', {
      param: 'key-holder',
      advice:
        'Run it with `cipherml demo homo-lr --key-holder threshold` (every party a process on loopback), or start `cipherml paillier threshold-keygen`, `cipherml key-holder`, then `cipherml server --key-holder threshold` with `cipherml worker` (or `cipherml fl nn-server` with `cipherml fl nn-worker` for neural networks) as docs/fl.md shows.',
    });
  }
}

/** Summary of a simulation. */
export interface SimulationResult {
  readonly server: RunSummary;
  readonly workers: readonly WorkerSummary[];
}

/**
 * Runs a federated training entirely in this process.
 *
 * @example
 * ```ts
 * const config = resolveRunConfig({ flags: { numServerRounds: 10, strategy: 'paillier' } });
 * const { server } = await simulate({ config, clients: [{ id: '1', client: a }, { id: '2', client: b }] });
 * ```
 */
export async function simulate(options: SimulationOptions): Promise<SimulationResult> {
  const { config } = options;
  assertSimulable(config);
  const needsAuthority = config.strategy === 'paillier' && config.keyHolder !== 'server';
  const serverId = generateIdentity('server', 'server');
  const authorityId = generateIdentity('authority', 'authority');
  const workerIds = new Map<string, Identity>(options.clients.map(({ id }) => [id, generateIdentity('worker', id)]));
  const roster = new Roster([serverId, ...(needsAuthority ? [authorityId] : []), ...workerIds.values()].map(publicIdentity));
  const authorityTransport = needsAuthority
    ? await (async () => {
        const authority = new KeyAuthority({
          keyPair: await generatePaillierKeyPair({ bits: config.keyBits }),
          keyHolder: config.keyHolder === 'clients' ? 'clients' : 'authority',
          secret: config.token,
          minContributions: config.minFitClients,
          trust: { identity: authorityId, roster },
        });
        return createRouterTransport((r) => authority.routes(r));
      })()
    : undefined;
  const built = await buildStrategy(config, { ...(authorityTransport === undefined ? {} : { authorityTransport }), trust: { identity: serverId, roster } });
  const strategy = options.wrapStrategy === undefined ? built : options.wrapStrategy(built);
  const server = new FlServer({
    settings: serverSettings(config, { ...options.settings, address: 'in-memory:0', pollWaitMs: 200, trust: { identity: serverId, roster } }),
    strategy,
    ...(options.initialModel === undefined ? {} : { initialModel: options.initialModel }),
    ...(options.evaluate === undefined ? {} : { evaluate: options.evaluate }),
    ...(options.onServerEvent === undefined ? {} : { onEvent: options.onServerEvent }),
  });
  await server.prepare();
  const transport = createRouterTransport((r) => server.routes(r), options.serverInterceptors === undefined ? {} : { router: { interceptors: options.serverInterceptors } });
  const running = server.run();
  // The secure-aggregation identity of a worker is its party identity.
  const identities = config.strategy === 'secagg' && config.secureAggregation !== 'stable-pw' ? workerIds : null;
  const peers = identities === null ? null : new Roster([...identities.values()].map((i) => publicIdentity(i)));
  const policy = { corruptFraction: config.secaggCorruptFraction, dropoutRate: config.secaggDropoutRate, statisticalSecurity: config.secaggStatisticalSecurity, collusion: config.collusionModel === 'server-clients' };
  const workers = options.clients.map(({ id, client, dropAt }) =>
    runWorker({
      ...(identities === null || peers === null ? {} : { secagg: { identity: identities.get(id)!, peers, policy } }),
      ...(dropAt === undefined ? {} : { dropAt }),
      workerId: id,
      token: config.token === '' ? '' : deriveToken(config.token, id),
      client,
      trust: { identity: workerIds.get(id)!, roster },
      transport,
      ...(authorityTransport === undefined ? {} : { authorityTransport }),
      pollWaitMs: 200,
      // One operator runs every party of a simulation: its workers accept the key size it chose.
      ...keySizeFor(config.keyBits).option,
      ...(options.onWorkerEvent === undefined ? {} : { onEvent: (e: WorkerEvent) => options.onWorkerEvent!(id, e) }),
    }),
  );
  try {
    const summary = await running;
    return { server: summary, workers: await Promise.all(workers) };
  } finally {
    await server.close();
  }
}
