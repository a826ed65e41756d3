import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { createClient, createRouterTransport } from '@connectrpc/connect';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FederatedService, JoinRequestSchema } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { PROTOCOL_VERSION, deriveToken, tensorsToWire } from '../../src/fl/protocol.ts';
import { FlServer } from '../../src/fl/server.ts';
import { PlainFedAvg } from '../../src/fl/strategy.ts';
import { openStorage, startService } from '../../src/service/index.ts';
import { ckksBomb, deepJson } from '../../bench/bombs.ts';
import { rawRequest } from './http.ts';
import { snapshot } from './snapshot.ts';

// Property: for random sequences of valid and invalid requests, the state after all of them
// equals the state after the valid ones alone (a refusal leaves no trace).

const root = mkdtempSync(join(tmpdir(), 'cipherml-robust-trace-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a refused Join leaves no trace (property)', () => {
  type J = { valid: boolean; req: Parameters<typeof create<typeof JoinRequestSchema>>[1] };
  const worker = fc.constantFrom('w1', 'w2', 'w3');
  const values = fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: 3, maxLength: 3 });
  const base = (id: string) => ({ protocolVersion: PROTOCOL_VERSION, workerId: id, instanceId: `i-${id}`, token: deriveToken('s', id), numExamples: 5n, model: [{ name: 'w', shape: [3] }] });
  const valid: fc.Arbitrary<J> = fc.record({ id: worker, inst: fc.constantFrom('a', 'b'), n: fc.integer({ min: 1, max: 1000 }), init: fc.option(values) }).map(({ id, inst, n, init }) => ({
    valid: true,
    req: { ...base(id), instanceId: inst, numExamples: BigInt(n), ...(init === null ? {} : { initial: { tensors: tensorsToWire([{ name: 'w', shape: [3], values: Float64Array.from(init) }]) } }) },
  }));
  const invalid: fc.Arbitrary<J> = fc.tuple(worker, fc.integer({ min: 0, max: 7 }), values).map(([id, kind, v]) => {
    const b = base(id);
    const nan = Float64Array.from(v);
    nan[1] = kind % 2 === 0 ? Number.NaN : Number.POSITIVE_INFINITY;
    const variants = [
      { ...b, initial: { tensors: tensorsToWire([{ name: 'w', shape: [3], values: nan }]) } },
      { ...b, numExamples: 0n },
      { ...b, model: [{ name: 'w', shape: [4294967295] }] },
      { ...b, model: [{ name: 'w', shape: [300000000] }] },
      { ...b, token: 'forged' },
      { ...b, protocolVersion: 99 },
      { ...b, workerId: '' },
      { ...b, model: [{ name: 'w', shape: [0] }] },
    ];
    return { valid: false, req: variants[kind]! };
  });

  const run = async (reqs: readonly J[]) => {
    const server = new FlServer({
      settings: { address: 'in-memory', numRounds: 1, fractionFit: 1, fractionEvaluate: 0, minFitClients: 1, minEvaluateClients: 0, minAvailableClients: 1, roundTimeoutMs: 1000, joinTimeoutMs: 1000, evalEvery: 1, runDir: join(root, 'fl'), secret: 's', maxMessageBytes: 1 << 20, fitConfig: {}, seed: 1 },
      strategy: new PlainFedAvg(),
    });
    await server.prepare();
    const rpc = createClient(FederatedService, createRouterTransport((r) => server.routes(r)));
    for (const r of reqs) await rpc.join(create(JoinRequestSchema, r.req)).catch(() => undefined);
    const state = server.inspect();
    await server.close();
    return state;
  };

  it('state after valid and invalid joins = state after the valid ones alone', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(valid, invalid), { maxLength: 12 }), async (reqs) => {
        expect(await run(reqs)).toEqual(await run(reqs.filter((r) => r.valid)));
      }),
      { numRuns: 60 },
    );
  });
});

describe('a refused service request leaves no trace (property, real HTTP)', () => {
  const USERS = ['owner', 'alice', 'bob'];
  type Call = { valid: boolean; who: 'owner' | 'alice' | 'bob' | 'anon'; method: string; path: string; type?: string; body?: string | Uint8Array };
  const model = fc.constantFrom('m', 'n');
  const valid: fc.Arbitrary<Call> = fc.oneof(
    model.map((m): Call => ({ valid: true, who: 'owner', method: 'POST', path: `/${m}/1/deploy_model` })),
    model.map((m): Call => ({ valid: true, who: 'alice', method: 'POST', path: `/${m}/1/application/register_user` })),
    fc.tuple(model, fc.integer({ min: 1, max: 4096 })).map(([m, k]): Call => ({ valid: true, who: 'alice', method: 'POST', path: `/${m}/1/add_profile`, type: 'application/json', body: JSON.stringify({ batchSize: k }) })),
    fc.tuple(model, fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([m, b]): Call => ({ valid: true, who: 'alice', method: 'PUT', path: `/${m}/1/context/secret`, type: 'application/octet-stream', body: b })),
  );
  const invalid = (bomb: Uint8Array, ctBomb: Uint8Array): fc.Arbitrary<Call> =>
    fc.tuple(model, fc.integer({ min: 0, max: 10 })).map(([m, k]): Call => {
      const calls: Call[] = [
        { valid: false, who: 'anon', method: 'POST', path: `/${m}/1/deploy_model` },
        { valid: false, who: 'alice', method: 'POST', path: `/${m}/1/deploy_model` },
        { valid: false, who: 'bob', method: 'POST', path: `/${m}/1/deploy_model` },
        { valid: false, who: 'alice', method: 'POST', path: `/${m}/1/add_profile`, type: 'application/json', body: deepJson(5000) },
        { valid: false, who: 'alice', method: 'POST', path: `/${m}/1/add_profile`, type: 'application/json', body: '{"batchSize":8,"x":{"y":[1]}}' },
        { valid: false, who: 'alice', method: 'POST', path: `/${m}/1/add_profile`, type: 'application/json', body: '{"batchSize":0}' },
        { valid: false, who: 'alice', method: 'PUT', path: `/${m}/1/context/public`, type: 'application/octet-stream', body: bomb },
        { valid: false, who: 'alice', method: 'PUT', path: `/${m}/1/data/fit`, type: 'application/octet-stream', body: ctBomb },
        { valid: false, who: 'alice', method: 'POST', path: `/${m}/1/predict?features=3`, type: 'application/octet-stream', body: ctBomb },
        { valid: false, who: 'anon', method: 'PUT', path: `/${m}/1/context/secret`, type: 'application/octet-stream', body: new Uint8Array(8) },
        { valid: false, who: 'alice', method: 'DELETE', path: `/${m}/1/undeploy_model` },
      ];
      return calls[k]!;
    });

  it('state after valid and invalid requests = state after the valid ones alone', async () => {
    const bomb = await ckksBomb('publicKey', 512 << 20);
    const ctBomb = await ckksBomb('ciphertext', 512 << 20);
    let n = 0;
    const run = async (calls: readonly Call[]) => {
      const dataDir = join(root, `svc-${n++}`);
      const s = await openStorage({ dataDir });
      const tokens: Record<string, string> = {
        owner: await s.createToken((await s.ensureUser('owner', 'owner')).id),
        alice: await s.createToken((await s.ensureUser('alice', 'user')).id),
        bob: await s.createToken((await s.ensureUser('bob', 'user')).id),
      };
      await s.close();
      const svc = await startService({ dataDir, port: 0, maxBodyBytes: 1 << 20 });
      try {
        for (const c of calls) {
          const headers: Record<string, string> = { ...(c.who === 'anon' ? {} : { authorization: `Bearer ${tokens[c.who]!}` }), ...(c.type === undefined ? {} : { 'content-type': c.type }) };
          const r = await rawRequest(`${svc.url}/api/v1${c.path}`, { method: c.method, headers, ...(c.body === undefined ? {} : { body: c.body }) });
          expect(r.status).toBeLessThan(500);
          if (!c.valid) expect(r.status).toBeGreaterThanOrEqual(400);
        }
        const state = (await snapshot(svc.storage, USERS)) as Record<string, unknown>;
        delete state['tokens'];
        return state;
      } finally {
        await svc.close();
      }
    };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(valid, invalid(bomb, ctBomb)), { maxLength: 10 }), async (calls) => {
        expect(await run(calls)).toEqual(await run(calls.filter((c) => c.valid)));
      }),
      { numRuns: 12 },
    );
  });
});
