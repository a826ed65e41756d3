import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { resetDefences } from '../../src/core/defences.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { Roster, generateIdentity, publicIdentity, type Identity } from '../../src/core/identity.ts';
import { logRegClient } from '../../src/fl/apps/logreg.ts';
import { KeyAuthority, type KeyAuthorityOptions } from '../../src/fl/authority.ts';
import {
  FederatedService,
  JoinResponseSchema,
  KeyAuthorityService,
  PullTaskResponseSchema,
  TaskSchema,
  type JoinRequest,
  type PushResultRequest,
} from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import type { PartyTrust } from '../../src/fl/identity-auth.ts';
import { fromRpcError, tensorsToWire, type NamedTensor } from '../../src/fl/protocol.ts';
import { FlServer, type ServerSettings } from '../../src/fl/server.ts';
import { zeroModel, type Strategy } from '../../src/fl/strategy.ts';
import { generatePaillierKeyPair, type PackingSpec, type PaillierKeyPair } from '../../src/paillier/index.ts';
import { createRpcTransport, startRpcServer, type RpcServer } from '../../src/fl/transport.ts';
import { runWorker, type FlClient, type WorkerOptions, type WorkerSummary } from '../../src/fl/worker.ts';
import { loadCsvDataset, shardDataset } from '../../src/ml/csv.ts';

// The adversarial harness: honest parties are the real runtime code (runWorker, FlServer,
// KeyAuthority) over the real ConnectRPC transport on loopback; the adversary is a scripted party
// speaking the same wire protocol (a malicious server, a malicious client) or calling the
// authority directly (a malicious server at the authority). Defences are switched off only through
// src/core/defences.ts, to show each attack succeeds against a build without the defence.

export const MAX_MESSAGE_BYTES = 4 << 20;

/** The packing of every Paillier attack (16 fractional, 15 integer bits). */
export const PACKING: PackingSpec = { fractionalBits: 16, integerBits: 15, maxContributions: 1000 };

/** A fresh temporary folder. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `cipherml-adv-${prefix}-`));
}

/** Every party's identity and one roster pinning them all (what an operator hands out). */
export interface Parties {
  readonly server: Identity;
  readonly authority: Identity;
  readonly workers: readonly Identity[];
  readonly roster: Roster;
  trust(who: Identity): PartyTrust;
}

/**
 * Identities of a server, a key authority (pinned only when `withAuthority`) and `n` workers with
 * ids "1".."n".
 */
export function makeParties(n: number, withAuthority = true): Parties {
  const server = generateIdentity('server', 'server');
  const authority = generateIdentity('authority', 'authority');
  const workers = Array.from({ length: n }, (_, i) => generateIdentity('worker', String(i + 1)));
  const roster = new Roster([server, ...(withAuthority ? [authority] : []), ...workers].map(publicIdentity));
  return { server, authority, workers, roster, trust: (who) => ({ identity: who, roster }) };
}

/** What {@link usePaillierWorld} makes once per test file. */
export interface PaillierWorld {
  readonly parties: Parties;
  /** A 1024-bit test key (the parties' --insecure-min-key-bits 1024). */
  readonly pair: PaillierKeyPair;
  /** A temporary folder for run folders, removed after the file. */
  readonly dir: string;
}

/**
 * Registers the common set-up of a Paillier attack file: identities of `n` workers, a server and
 * (when `withAuthority`) a pinned key authority, a 1024-bit key and a temporary folder, made once
 * before the file's tests; every defence back on after each test and at the end.
 */
export function usePaillierWorld(n: number, withAuthority = true): PaillierWorld {
  let world: PaillierWorld | null = null;
  const get = (): PaillierWorld => {
    if (world === null) throw new Error('usePaillierWorld: read only inside a test');
    return world;
  };
  beforeAll(async () => {
    world = { parties: makeParties(n, withAuthority), pair: await generatePaillierKeyPair({ bits: 1024 }), dir: await tempDir('paillier') };
  });
  afterEach(() => resetDefences());
  afterAll(async () => {
    resetDefences();
    if (world !== null) await rm(world.dir, { recursive: true, force: true });
  });
  return {
    get parties() {
      return get().parties;
    },
    get pair() {
      return get().pair;
    },
    get dir() {
      return get().dir;
    },
  };
}

/**
 * A loopback FlServer for an attack: `workers` workers, every one needed in each round, one
 * attempt per round, run folder `<dir>/<name>`; `settings` overrides.
 */
export function attackServer(o: { readonly dir: string; readonly name: string; readonly strategy: Strategy; readonly workers?: number; readonly rounds?: number; readonly settings?: Partial<ServerSettings>; readonly interceptors?: Interceptor[] }): FlServer {
  const workers = o.workers ?? 2;
  return new FlServer({
    settings: {
      address: '127.0.0.1:0', numRounds: o.rounds ?? 1, fractionFit: 1, fractionEvaluate: 0, minFitClients: workers, minEvaluateClients: 0, minAvailableClients: workers,
      roundTimeoutMs: 20_000, joinTimeoutMs: 20_000, evalEvery: 1, runDir: join(o.dir, o.name), secret: '', maxMessageBytes: MAX_MESSAGE_BYTES,
      fitConfig: {}, seed: 1, pollWaitMs: 200, maxRoundAttempts: 1,
      ...o.settings,
    },
    strategy: o.strategy,
    ...(o.interceptors === undefined ? {} : { interceptors: o.interceptors }),
  });
}

/** A key authority serving on loopback. */
export async function startAuthority(options: KeyAuthorityOptions): Promise<{ address: string; events: string[]; close(): Promise<void> }> {
  const events: string[] = [];
  const authority = new KeyAuthority({ ...options, onEvent: (e) => events.push(`${e.type} ${e.party}: ${e.detail}`) });
  const srv = await startRpcServer({ address: '127.0.0.1:0', routes: (r) => authority.routes(r), maxMessageBytes: MAX_MESSAGE_BYTES });
  return { address: srv.address, events, close: () => srv.close() };
}

/** A client of the key authority at `address`, as any party (or an adversary) would hold. */
export function authorityClient(address: string): Client<typeof KeyAuthorityService> {
  return createClient(KeyAuthorityService, createRpcTransport({ address, maxMessageBytes: MAX_MESSAGE_BYTES }));
}

/** The cipherml error code an RPC call fails with ('ok' when it succeeds). */
export async function rpcCode(p: Promise<unknown>, peer = 'peer'): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    const err = isCipherMLError(e) ? e : fromRpcError(e, peer);
    return err.code;
  }
}

/** Records the wire bytes of every unary request a server receives. */
export function recorder(sink: Uint8Array[]): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) sink.push(toBinary(req.method.input, req.message));
    return next(req);
  };
}

/** A logistic-regression client on shard k of n of the bundled breast cancer guest data. */
export async function dataClient(k: number, n: number, seed = k): Promise<FlClient> {
  const data = await loadCsvDataset(join(import.meta.dirname, '..', '..', 'examples', 'data', 'breast_homo_guest.csv'));
  return logRegClient(shardDataset(data, k, n), { localEpochs: 1, batchSize: 32, learningRate: 0.1, l2: 1e-3, seed });
}

export { recording } from '../fl-helpers.ts';

/** Runs an honest worker against `address` (loopback, plaintext). */
export function honestWorker(address: string, options: Omit<WorkerOptions, 'transport' | 'token'> & { authorityAddress?: string }): Promise<WorkerSummary> {
  const { authorityAddress, ...rest } = options;
  return runWorker({
    token: '',
    pollWaitMs: 200,
    reconnectTimeoutMs: 2000,
    ...rest,
    transport: createRpcTransport({ address, maxMessageBytes: MAX_MESSAGE_BYTES }),
    ...(authorityAddress === undefined ? {} : { authorityTransport: createRpcTransport({ address: authorityAddress, maxMessageBytes: MAX_MESSAGE_BYTES }) }),
  });
}

/** What a scripted (malicious) server announces at join. */
export type JoinScript = (req: JoinRequest) => MessageInitShape<typeof JoinResponseSchema>;

/**
 * A malicious parameter server: speaks the FederatedService wire protocol, answers every join with
 * what `script` says (a substituted key, a downgraded strategy, …), hands each worker one fit task
 * on a zero model of the specs it declared, records every byte and every result it receives, then
 * finishes the worker.
 */
export class ScriptedServer {
  readonly received: Uint8Array[] = [];
  readonly joins: JoinRequest[] = [];
  readonly results: PushResultRequest[] = [];
  readonly #script: JoinScript;
  readonly #weightOf: (join: JoinRequest) => number;
  readonly #state = new Map<string, { join: JoinRequest; sent: boolean; done: boolean }>();
  #rpc: RpcServer | null = null;

  /** `weightOf` is the FedAvg weight each worker is told (default 0.5). */
  constructor(script: JoinScript, weightOf: (join: JoinRequest) => number = () => 0.5) {
    this.#script = script;
    this.#weightOf = weightOf;
  }

  async listen(): Promise<string> {
    this.#rpc = await startRpcServer({
      address: '127.0.0.1:0',
      maxMessageBytes: MAX_MESSAGE_BYTES,
      interceptors: [recorder(this.received)],
      routes: (router) =>
        router.service(FederatedService, {
          join: (req) => {
            this.joins.push(req);
            this.#state.set(req.workerId, { join: req, sent: false, done: false });
            return create(JoinResponseSchema, { sessionId: req.workerId, runId: 'scripted', strategy: 'paillier', keyHolder: 'authority', nextRound: 1, numRounds: 1, ...this.#script(req) });
          },
          pullTask: async (req) => {
            const st = this.#state.get(req.sessionId);
            if (st === undefined) return create(PullTaskResponseSchema, {});
            if (st.done) return create(PullTaskResponseSchema, { task: create(TaskSchema, { taskId: 'finish', round: 1, body: { case: 'finish', value: { reason: 'scripted server done' } } }) });
            if (!st.sent) {
              st.sent = true;
              const model: NamedTensor[] = zeroModel(st.join.model);
              return create(PullTaskResponseSchema, {
                task: create(TaskSchema, { taskId: `fit-${req.sessionId}`, round: 1, body: { case: 'fit', value: { model: { kind: { case: 'plain', value: { tensors: tensorsToWire(model) } } }, weight: this.#weightOf(st.join), config: {} } } }),
              });
            }
            await new Promise((r) => setTimeout(r, 50));
            return create(PullTaskResponseSchema, { task: create(TaskSchema, { taskId: '', round: 1, body: { case: 'wait', value: {} } }) });
          },
          pushResult: (req) => {
            this.results.push(req);
            const st = this.#state.get(req.sessionId);
            if (st !== undefined) st.done = true;
            return {};
          },
          heartbeat: () => ({}),
          leave: () => ({}),
        }),
    });
    return this.#rpc.address;
  }

  async close(): Promise<void> {
    await this.#rpc?.close();
  }
}

/** Turns every defence back on (call in afterEach). */
export { resetDefences };
