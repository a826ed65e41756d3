import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { createClient, type Client, type Transport } from '@connectrpc/connect';
import { defences } from '../core/defences.ts';
import { CipherMLError, isCipherMLError } from '../core/errors.ts';
import {
  PackingLayout,
  decryptVector,
  deserializePacked,
  deserializePublicKey,
  deserializePrivateKey,
  encryptVector,
  precomputeRandomizers,
  serializePacked,
  type PackingSpec,
  type RandomizerStock,
  type PaillierPrivateKey,
  type PaillierPublicKey,
} from '../paillier/index.ts';
import {
  FederatedService,
  KeyAuthorityService,
  ModelPayloadSchema,
  PushResultRequestSchema,
  type JoinResponse,
  type ModelPayload,
  type PushResultRequest,
  type Task,
} from './gen/cipherml/fl/v1/fl_pb.ts';
import { SIG_CONTEXT, signRequest, soleParty, type PartyTrust } from './identity-auth.ts';
import { contributionKeyId, sealContribution } from './contribution.ts';
import { acceptPaillierKey } from './key-pinning.ts';
import { PROTOCOL_VERSION, fromRpcError, parameterCount, specsOf, tensorsFromWire, tensorsToWire, unflatten, type NamedTensor } from './protocol.ts';
import { advertiseKeys, answerStage, beginWorkerRound, stageOfTask, type SecAggWorkerOptions, type SecAggWorkerRound, type WorkerStage } from './secagg-client.ts';
import { weightedFlat } from './strategy.ts';

/**
 * A worker (data owner): joins the server, long-polls for tasks, trains and evaluates a local
 * model, and sends back either its parameters (plain FedAvg) or Enc(w·θ) (Paillier FedAvg). It
 * reconnects with exponential backoff when the server is unreachable or restarted.
 */

/** Local training result. */
export interface FitOutput {
  readonly parameters: readonly NamedTensor[];
  readonly numExamples: number;
  readonly metrics?: Readonly<Record<string, number>>;
}

/** Local evaluation result. */
export interface EvaluateOutput {
  readonly loss: number;
  readonly numExamples: number;
  readonly metrics?: Readonly<Record<string, number>>;
}

/**
 * The model-agnostic client side (Flower's NumPyClient shape) over named float64 tensors.
 *
 * @example
 * ```ts
 * const client: FlClient = {
 *   numExamples: () => data.length,
 *   getParameters: () => model.tensors(),
 *   fit: async (params, config) => { model.set(params); model.train(data, config); return { parameters: model.tensors(), numExamples: data.length }; },
 *   evaluate: async (params) => { model.set(params); return { loss: model.loss(data), numExamples: data.length }; },
 * };
 * ```
 */
export interface FlClient {
  numExamples(): number;
  getParameters(): readonly NamedTensor[];
  fit(parameters: readonly NamedTensor[], config: Readonly<Record<string, string>>): Promise<FitOutput>;
  evaluate(parameters: readonly NamedTensor[], config: Readonly<Record<string, string>>): Promise<EvaluateOutput>;
}

/** Worker progress events. */
export type WorkerEvent =
  | { readonly type: 'joined'; readonly strategy: string; readonly keyHolder: string; readonly nextRound: number; readonly numRounds: number }
  | {
      readonly type: 'fit';
      readonly round: number;
      readonly loss: number | null;
      readonly bytesOut: number;
      readonly ms: number;
      /** Paillier: ciphertexts of the update whose randomizers were precomputed while the worker waited. */
      readonly precomputed?: number;
    }
  | { readonly type: 'secagg'; readonly round: number; readonly stage: string; readonly bytesOut: number; readonly clipped?: number }
  | { readonly type: 'evaluate'; readonly round: number; readonly loss: number; readonly accuracy: number | null }
  | { readonly type: 'retry'; readonly reason: string; readonly delayMs: number }
  | { readonly type: 'task-failed'; readonly round: number; readonly code: string; readonly message: string }
  | { readonly type: 'finished'; readonly reason: string };

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  readonly workerId: string;
  readonly token: string;
  readonly client: FlClient;
  /** Transport to the server (gRPC over HTTP/2, or in-memory for simulation). */
  readonly transport: Transport;
  /** Transport to the key authority (needed when the key holder is "clients"). */
  readonly authorityTransport?: Transport;
  readonly onEvent?: (e: WorkerEvent) => void;
  /** Give up reconnecting after this long without reaching the server. Default 120 s. */
  readonly reconnectTimeoutMs?: number;
  readonly pollWaitMs?: number;
  readonly signal?: AbortSignal;
  /**
   * Simulates this worker dropping out (demos and tests): on receiving the named task of the
   * named round it stops answering at once, without leaving, as a crashed device would.
   */
  readonly dropAt?: { readonly round: number; readonly stage: WorkerStage };
  /** Secure aggregation: identity, pinned peers and security policy (src/fl/secagg-client.ts). */
  readonly secagg?: SecAggWorkerOptions;
  /** Key-holder "threshold": pins the threshold key and signs each update (src/fl/threshold-worker.ts). */
  readonly contributions?: ContributionSigner;
  /**
   * Identity mode: this worker's identity and the roster it trusts (server, key authority). It
   * signs its join, its key-pair request and each Paillier contribution, and accepts a Paillier
   * key only when pinned or signed by the pinned authority (src/fl/key-pinning.ts). Null or
   * absent: the insecure development mode (token only).
   */
  readonly trust?: PartyTrust | null;
  /** `paillier-key-fingerprint`: encrypt only under this key (empty or absent: not pinned). */
  readonly pinnedKeyFingerprint?: string;
  /** Smallest Paillier modulus this worker encrypts under; default 2048. Lower only for tests. */
  readonly minKeyBits?: number;
  /** What this worker was configured for; a server announcing something else is refused (DOWNGRADE). */
  readonly expect?: { readonly strategy?: string; readonly keyHolder?: string };
  /**
   * Runs on every join reply before the worker uses it and returns the fingerprint of the only
   * Paillier key this worker may encrypt under (src/enclave: the key the aggregator's attestation
   * binds, after checking the reply's key and run id against it); a throw stops the worker.
   */
  readonly attestedKey?: (reply: JoinResponse) => string;
}

/** Pins the Paillier key a worker encrypts under and wraps each encrypted update (key-holder "threshold"). */
export interface ContributionSigner {
  /** Throws unless the server's key is the pinned one. */
  checkKey(publicKey: PaillierPublicKey, keyHolder: string): void;
  /** The bytes sent in place of the packed vector: the update signed for (run, round, weight, example count). */
  seal(runId: string, round: number, weight: number, numExamples: number, packed: Uint8Array): Uint8Array;
}

export type { WorkerStage } from './secagg-client.ts';

/** What a worker ends with. */
export interface WorkerSummary {
  readonly rounds: number;
  readonly reason: string;
  /** The final global model, when this worker may see it. */
  readonly model: readonly NamedTensor[] | null;
}

interface Crypto {
  readonly publicKey: PaillierPublicKey;
  readonly packing: PackingSpec;
  readonly layout: PackingLayout;
  privateKey: PaillierPrivateKey | null;
  /**
   * DJN randomizers of the next update, computed in the background while the worker waits (they
   * do not depend on the update; each is used once): the encryption in the round is then one
   * multiplication per ciphertext. Null when none are being made; a failed precomputation
   * resolves to null and the encryption makes fresh ones.
   */
  stock: Promise<RandomizerStock | null> | null;
}

/** Starts computing the randomizers of one update of `length` values (off the round's critical path). */
function refillRandomizers(c: Crypto, length: number): void {
  c.stock = precomputeRandomizers(c.publicKey, c.layout.ciphertextsFor(length)).catch(() => null);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/**
 * Runs a worker until the server sends its finish task (or `signal` aborts).
 *
 * @example
 * ```ts
 * const summary = await runWorker({ workerId: '1', token, client, transport: createRpcTransport({ address: 'server:9091', maxMessageBytes: 64 << 20 }) });
 * ```
 */
export async function runWorker(options: WorkerOptions): Promise<WorkerSummary> {
  const emit = options.onEvent ?? (() => undefined);
  const server: Client<typeof FederatedService> = createClient(FederatedService, options.transport);
  const instanceId = randomBytes(8).toString('hex');
  const reconnectTimeoutMs = options.reconnectTimeoutMs ?? 120_000;
  const pollWaitMs = options.pollWaitMs ?? 5000;
  let crypto: Crypto | null = null;
  let rounds = 0;
  let trained = false;
  let secagg: SecAggWorkerRound | null = null;
  let runId = '';
  let numRounds = 0;
  let precomputed = 0;
  const trust = options.trust ?? null;
  const keyTrust = { pinnedFingerprint: options.pinnedKeyFingerprint ?? '', roster: trust?.roster ?? null, ...(options.minKeyBits === undefined ? {} : { minKeyBits: options.minKeyBits }) };

  const checkAnnounced = (reply: JoinResponse): void => {
    if (!defences.announcementCheck) return;
    const e = options.expect;
    // A roster that pins a key authority means this run encrypts: a server announcing anything else is a downgrade.
    if (trust !== null && trust.roster.parties.some((p) => p.role === 'authority') && reply.strategy !== 'paillier') {
      throw new CipherMLError('CIPHERML_E_DOWNGRADE', `the server announced strategy "${reply.strategy}", but the roster pins a key authority: this worker sends only Paillier-encrypted updates`, { param: 'strategy', details: { announced: reply.strategy } });
    }
    for (const [field, want, got] of [['strategy', e?.strategy, reply.strategy], ['key-holder', e?.keyHolder, reply.keyHolder]] as const) {
      if (want !== undefined && want !== '' && want !== got && !(field === 'key-holder' && reply.strategy !== 'paillier')) {
        throw new CipherMLError('CIPHERML_E_DOWNGRADE', `the server announced ${field} "${got}", this worker is configured for "${want}"`, { param: field, details: { announced: got, configured: want } });
      }
    }
  };

  const join = async (): Promise<JoinResponse> => {
    const started = Date.now();
    let delay = 200;
    for (;;) {
      try {
        const init = options.client.getParameters();
        const sig = trust === null ? {} : signRequest(trust.identity, SIG_CONTEXT.join, ['join', options.workerId, instanceId], soleParty(trust.roster, 'server', 'roster').fingerprint);
        // Initial parameters go out only before the first local training: after that they are
        // this worker's trained model, which a Paillier run must never send in the clear.
        const reply = await server.join({
          protocolVersion: PROTOCOL_VERSION,
          workerId: options.workerId,
          instanceId,
          token: options.token,
          numExamples: BigInt(options.client.numExamples()),
          model: specsOf(init),
          ...(trained ? {} : { initial: { tensors: tensorsToWire(init) } }),
          ...sig,
        });
        checkAnnounced(reply);
        const previous = crypto;
        crypto = await setupCrypto(reply, crypto, options.attestedKey?.(reply));
        if (crypto !== null && crypto !== previous) refillRandomizers(crypto, parameterCount(specsOf(init)));
        runId = reply.runId;
        numRounds = reply.numRounds;
        emit({ type: 'joined', strategy: reply.strategy, keyHolder: reply.keyHolder, nextRound: reply.nextRound, numRounds: reply.numRounds });
        return reply;
      } catch (e) {
        const err = fromRpcError(e, 'server');
        if (err.code !== 'CIPHERML_E_PEER_UNAVAILABLE' || Date.now() - started > reconnectTimeoutMs || options.signal?.aborted === true) throw err;
        emit({ type: 'retry', reason: err.message, delayMs: delay });
        await sleep(delay, options.signal);
        delay = Math.min(delay * 2, 5000);
      }
    }
  };

  const setupCrypto = async (reply: JoinResponse, previous: Crypto | null, attested?: string): Promise<Crypto | null> => {
    if (options.contributions !== undefined && reply.strategy !== 'paillier') {
      throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `this worker is pinned to a threshold key and sends only encrypted, signed updates, but the server runs strategy "${reply.strategy}"`, { param: 'strategy' });
    }
    if (reply.strategy !== 'paillier') return null;
    // A threshold run pins its key by fingerprint (ContributionSigner.checkKey); every other run goes through key pinning.
    const publicKey = options.contributions !== undefined ? deserializePublicKey(reply.publicKey) : acceptPaillierKey(reply, attested === undefined ? keyTrust : { ...keyTrust, pinnedFingerprint: attested }, 'server');
    options.contributions?.checkKey(publicKey, reply.keyHolder);
    if (previous !== null && previous.publicKey.equals(publicKey)) return previous;
    const p = reply.packing;
    if (p === undefined) throw new CipherMLError('CIPHERML_E_PROTOCOL', 'the server announced Paillier without a packing layout', { param: 'packing' });
    const packing: PackingSpec = { fractionalBits: p.fractionalBits, integerBits: p.integerBits, maxContributions: p.maxContributions };
    let privateKey: PaillierPrivateKey | null = null;
    if (reply.keyHolder === 'clients') {
      if (options.authorityTransport === undefined) {
        throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `key-holder "clients" needs the key authority's address (server says ${reply.authorityAddress || 'nothing'})`, { param: 'authority-address' });
      }
      const authority = createClient(KeyAuthorityService, options.authorityTransport);
      const sig = trust === null ? {} : signRequest(trust.identity, SIG_CONTEXT.authorityRequest, ['getKeyPair', options.workerId], soleParty(trust.roster, 'authority', 'roster').fingerprint);
      const kp = await authority.getKeyPair({ protocolVersion: PROTOCOL_VERSION, token: options.token, workerId: options.workerId, ...sig }).catch((e: unknown) => {
        throw fromRpcError(e, 'key authority');
      });
      if (trust !== null) acceptPaillierKey({ publicKey: kp.publicKey, keyHolder: 'clients', keySignature: kp.keySignature, keySignerId: kp.keySignerId }, keyTrust, 'key authority');
      privateKey = deserializePrivateKey(kp.privateKey);
      if (!privateKey.publicKey.equals(publicKey)) {
        throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `the key authority holds key ${privateKey.publicKey.fingerprint}, the server offered ${publicKey.fingerprint}`, {
          param: 'publicKey',
          details: { authority: privateKey.publicKey.fingerprint, server: publicKey.fingerprint },
        });
      }
    }
    return { publicKey, packing, layout: PackingLayout.forKey(publicKey, packing), privateKey, stock: null };
  };

  const decode = async (payload: ModelPayload | undefined): Promise<NamedTensor[]> => {
    if (payload === undefined) throw new CipherMLError('CIPHERML_E_PROTOCOL', 'task without a model', { param: 'model' });
    if (payload.kind.case === 'plain') return tensorsFromWire(payload.kind.value.tensors, 'model');
    if (payload.kind.case === 'encrypted') {
      const c = crypto;
      if (c === null || c.privateKey === null) throw new CipherMLError('CIPHERML_E_FORBIDDEN', 'received an encrypted global model but this worker holds no secret key', { param: 'model' });
      const enc = payload.kind.value;
      const length = parameterCount(enc.specs);
      const sums = await decryptVector(c.privateKey, deserializePacked(c.publicKey, enc.packed, { length, layout: c.layout }));
      return unflatten(sums.map((v) => v / enc.weightTotal), enc.specs, 'model');
    }
    throw new CipherMLError('CIPHERML_E_PROTOCOL', 'empty model payload', { param: 'model' });
  };

  // The broken build of the adversarial suite (defences.encryptUpdates off) sends updates in the clear.
  const encodeFit = async (params: readonly NamedTensor[], weight: number, round: number, numExamples: number): Promise<ModelPayload> => {
    const c = crypto;
    if (c === null || !defences.encryptUpdates) return create(ModelPayloadSchema, { kind: { case: 'plain', value: { tensors: tensorsToWire(params) } } });
    const flat = weightedFlat(params, weight);
    const stock = c.stock === null ? null : await c.stock;
    c.stock = null;
    const before = stock?.size ?? 0;
    const enc = await encryptVector(c.publicKey, flat, { packing: c.packing, ...(stock === null ? {} : { randomizers: stock }) });
    precomputed = before - (stock?.size ?? 0);
    if (round < numRounds) refillRandomizers(c, flat.length);
    // Every Paillier update a worker with an identity sends is signed, in the one format
    // (src/fl/contribution.ts) the key authority and the threshold key holders verify.
    const bare = serializePacked(enc);
    const packed =
      options.contributions !== undefined
        ? options.contributions.seal(runId, round, weight, numExamples, bare)
        : trust !== null
          ? sealContribution(trust.identity, { runId, round, weight, numExamples, workerId: trust.identity.id, keyFingerprint: contributionKeyId(c.publicKey) }, bare)
          : bare;
    return create(ModelPayloadSchema, { kind: { case: 'encrypted', value: { packed, specs: specsOf(params), weightTotal: weight } } });
  };

  const execute = async (sessionId: string, task: Task): Promise<PushResultRequest | WorkerSummary | null> => {
    const body = task.body;
    if (body.case === 'wait' || body.case === undefined) return null;
    if (body.case === 'finish') {
      let model: NamedTensor[] | null = null;
      try {
        model = body.value.model === undefined ? null : await decode(body.value.model);
      } catch (e) {
        if (!isCipherMLError(e, 'CIPHERML_E_FORBIDDEN')) throw e;
      }
      emit({ type: 'finished', reason: body.value.reason });
      return { rounds, reason: body.value.reason, model };
    }
    const base = { sessionId, taskId: task.taskId, round: task.round };
    if (options.dropAt !== undefined && options.dropAt.round === task.round && options.dropAt.stage === stageOfTask(task, secagg)) {
      const reason = `simulated dropout at ${options.dropAt.stage} of round ${task.round}`;
      emit({ type: 'finished', reason });
      return { rounds, reason, model: null };
    }
    const heartbeat = setInterval(() => void server.heartbeat({ sessionId }).catch(() => undefined), Math.max(1000, pollWaitMs / 2));
    try {
      if (body.case === 'secagg') {
        if (secagg === null) throw new CipherMLError('CIPHERML_E_PROTOCOL', 'a secure-aggregation stage task without a round begun by a fit task', { param: 'task' });
        const { result, bytesOut } = answerStage(secagg, body.value);
        emit({ type: 'secagg', round: task.round, stage: stageOfTask(task, secagg) ?? 'unknown', bytesOut });
        return create(PushResultRequestSchema, { ...base, body: { case: 'secagg', value: result } });
      }
      if (body.case === 'fit') {
        const t0 = performance.now();
        const params = await decode(body.value.model);
        trained = true;
        const out = await options.client.fit(params, body.value.config);
        if (body.value.secagg !== undefined) {
          // Secure aggregation: the trained parameters stay here; only keys go out now.
          secagg = beginWorkerRound(body.value.secagg, options.workerId, out.parameters, body.value.weight, options.secagg);
          const keys = advertiseKeys(secagg);
          rounds++;
          emit({ type: 'fit', round: task.round, loss: out.metrics?.['loss'] ?? null, bytesOut: 64, ms: performance.now() - t0 });
          if (secagg.clipped > 0) emit({ type: 'secagg', round: task.round, stage: 'advertise', bytesOut: 64, clipped: secagg.clipped });
          const metrics = { ...out.metrics, clipped: secagg.clipped };
          return create(PushResultRequestSchema, { ...base, body: { case: 'fit', value: { numExamples: BigInt(out.numExamples), metrics, secaggKeys: keys } } });
        }
        const payload = await encodeFit(out.parameters, body.value.weight, task.round, out.numExamples);
        rounds++;
        const bytesOut = payload.kind.case === 'encrypted' ? payload.kind.value.packed.length : out.parameters.reduce((a, t) => a + t.values.length * 8, 0);
        emit({ type: 'fit', round: task.round, loss: out.metrics?.['loss'] ?? null, bytesOut, ms: performance.now() - t0, ...(payload.kind.case === 'encrypted' ? { precomputed } : {}) });
        return create(PushResultRequestSchema, { ...base, body: { case: 'fit', value: { model: payload, numExamples: BigInt(out.numExamples), metrics: { ...out.metrics } } } });
      }
      const params = await decode(body.value.model);
      const out = await options.client.evaluate(params, body.value.config);
      emit({ type: 'evaluate', round: task.round, loss: out.loss, accuracy: out.metrics?.['accuracy'] ?? null });
      return create(PushResultRequestSchema, { ...base, body: { case: 'evaluate', value: { loss: out.loss, numExamples: BigInt(out.numExamples), metrics: { ...out.metrics } } } });
    } catch (e) {
      const err = isCipherMLError(e) ? e : new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `local task failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      emit({ type: 'task-failed', round: task.round, code: err.code, message: err.message });
      return create(PushResultRequestSchema, { ...base, body: { case: 'error', value: { code: err.code, message: err.message } } });
    } finally {
      clearInterval(heartbeat);
    }
  };

  let session = (await join()).sessionId;
  let unreachableSince: number | null = null;
  for (;;) {
    if (options.signal?.aborted === true) {
      await server.leave({ sessionId: session, reason: 'aborted' }).catch(() => undefined);
      return { rounds, reason: 'aborted', model: null };
    }
    try {
      const { task } = await server.pullTask({ sessionId: session, waitMs: pollWaitMs });
      unreachableSince = null;
      if (task === undefined) continue;
      const result = await execute(session, task);
      if (result === null) continue;
      if ('reason' in result) return result;
      await server.pushResult(result).catch((e: unknown) => {
        const err = fromRpcError(e, 'server');
        if (err.code === 'CIPHERML_E_PEER_UNAVAILABLE') throw err;
        emit({ type: 'task-failed', round: task.round, code: err.code, message: err.message });
      });
    } catch (e) {
      const err = fromRpcError(e, 'server');
      if (err.code === 'CIPHERML_E_PEER_UNAVAILABLE') {
        unreachableSince ??= Date.now();
        if (Date.now() - unreachableSince > reconnectTimeoutMs) throw err;
        emit({ type: 'retry', reason: err.message, delayMs: 1000 });
        await sleep(1000, options.signal);
        continue;
      }
      if (err.code === 'CIPHERML_E_PROTOCOL' && /session/.test(err.message)) {
        session = (await join()).sessionId;
        continue;
      }
      throw err;
    }
  }
}
