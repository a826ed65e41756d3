import http2 from 'node:http2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, ScalarType } from '@bufbuild/protobuf';
import type { DescField, DescMessage, DescMethod } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import fc from 'fast-check';
import { FederatedService } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { FlServer } from '../../src/fl/server.ts';
import { PlainFedAvg } from '../../src/fl/strategy.ts';
import { createRpcTransport } from '../../src/fl/transport.ts';
import { RETAINED_EVERY, retainedBytes } from './memory.ts';

/**
 * Fuzzing every method of the federated server's gRPC service, driven by its proto descriptors:
 * messages are generated field by field from the descriptors (every scalar kind with its
 * extremes: NaN/∞ doubles, 2³²−1 and 3·10⁸ dimensions, huge int64s; nested messages and oneofs),
 * plus raw frames of random bytes. Over real HTTP/2 on loopback. Pass: no process exit, every
 * refusal of a decodable message a typed RPC error (never Internal/Unknown), an answer to every
 * raw frame and a server that still serves after it, a refused Join leaves the join state
 * unchanged, the heap retained after full collections stays within `retainedBoundBytes` (default
 * 32 MiB) of its start, and RSS, a loose ceiling, within `rssBoundBytes`.
 */

const u32 = fc.oneof(fc.nat(), fc.constantFrom(0, 1, 3, 4294967295, 300000000, 2 ** 31));
function scalar(t: ScalarType): fc.Arbitrary<unknown> {
  switch (t) {
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0));
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.STRING:
      return fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('', 'w1', 'x'.repeat(300)));
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 200 });
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return u32;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.integer(), fc.constantFrom(-1, 0, 1, 2 ** 31 - 1));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 1n, 10n));
    default:
      return fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.constantFrom(-1n, 0n, 1n));
  }
}

function fieldValue(f: DescField, depth: number): fc.Arbitrary<unknown> {
  switch (f.fieldKind) {
    case 'scalar':
      return scalar(f.scalar);
    case 'enum':
      return fc.integer({ min: -1, max: 5 });
    case 'message':
      return message(f.message, depth + 1);
    case 'list': {
      const item = f.listKind === 'scalar' ? scalar(f.scalar) : f.listKind === 'enum' ? fc.integer({ min: 0, max: 3 }) : message(f.message, depth + 1);
      return fc.array(item, { maxLength: depth > 1 ? 1 : 4 });
    }
    case 'map':
      return fc.constant({});
  }
}

/** An init object for `create(desc, init)`: any subset of the fields, one member per oneof. */
export function message(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (depth > 3) return fc.constant({});
  const plain = desc.fields.filter((f) => f.oneof === undefined);
  const parts: fc.Arbitrary<Record<string, unknown>>[] = plain.map((f) => fc.option(fieldValue(f, depth), { freq: 3 }).map((v) => (v === null ? {} : { [f.localName]: v })));
  for (const o of desc.oneofs) {
    parts.push(fc.option(fc.oneof(...o.fields.map((f) => fieldValue(f, depth).map((value) => ({ [o.localName]: { case: f.localName, value } })))), { freq: 3 }).map((v) => v ?? {}));
  }
  return fc.tuple(...parts).map((xs) => Object.assign({}, ...xs) as Record<string, unknown>);
}

async function rawFrame(address: string, method: DescMethod, payload: Uint8Array): Promise<string> {
  const session = http2.connect(`http://${address}`);
  try {
    return await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': `/${FederatedService.typeName}/${method.name}`, 'content-type': 'application/grpc', te: 'trailers' });
      let status = '';
      req.on('response', (h) => (status = String(h['grpc-status'] ?? status)));
      req.on('trailers', (t) => (status = String(t['grpc-status'] ?? status)));
      req.on('end', () => resolve(status));
      req.on('error', reject);
      req.resume();
      const head = Buffer.alloc(5);
      head.writeUInt32BE(payload.length, 1);
      req.end(Buffer.concat([head, payload]));
    });
  } finally {
    session.close();
  }
}

/**
 * Runs `numRuns` generated calls against a fresh federated server; throws on the first violation.
 *
 * @example
 * ```ts
 * await fuzzGrpc({ numRuns: 1000, seed: 1, rssBoundBytes: 256 << 20 });
 * ```
 */
export async function fuzzGrpc(options: { numRuns: number; seed?: number; rssBoundBytes: number; retainedBoundBytes?: number }): Promise<{ calls: number; byCode: Record<string, number>; maxRssGrowthBytes: number; maxRetainedGrowthBytes: number }> {
  const root = mkdtempSync(join(tmpdir(), 'cipherml-fuzz-grpc-'));
  const server = new FlServer({
    settings: { address: '127.0.0.1:0', numRounds: 1, fractionFit: 1, fractionEvaluate: 0, minFitClients: 1, minEvaluateClients: 0, minAvailableClients: 1, roundTimeoutMs: 1000, joinTimeoutMs: 1000, evalEvery: 1, runDir: join(root, 'run'), secret: '', maxMessageBytes: 1 << 20, fitConfig: {}, seed: 1, pollWaitMs: 20 },
    strategy: new PlainFedAvg(),
  });
  const address = await server.listen();
  const client = createClient(FederatedService, createRpcTransport({ address, maxMessageBytes: 4 << 20 })) as unknown as Record<string, (m: unknown) => Promise<unknown>>;
  const sessions: string[] = [];
  const byCode: Record<string, number> = {};
  let maxGrowth = 0;
  const rss0 = process.memoryUsage().rss;
  const retained0 = retainedBytes();
  const retainedBound = options.retainedBoundBytes ?? 32 << 20;
  let maxRetained = 0;
  let done = 0;
  const methods = FederatedService.methods.filter((m) => m.methodKind === 'unary');
  const call = fc.oneof(
    ...methods.map((m) => fc.record({ method: fc.constant(m), init: message(m.input), session: fc.nat(), raw: fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) }) })),
  );
  try {
    await fc.assert(
      fc.asyncProperty(call, async ({ method, init, session, raw }) => {
        if (raw !== null) {
          const status = await rawFrame(address, method, raw);
          byCode[`raw:${status}`] = (byCode[`raw:${status}`] ?? 0) + 1;
          // connect-node itself answers an undecodable frame with status 13 (internal); what
          // matters here is an answer at all and a server that keeps serving.
          if (status === '') throw new Error(`raw ${method.name} frame: no gRPC status`);
          const alive = await client['heartbeat']!(create(FederatedService.method.heartbeat.input, { sessionId: 'probe' })).catch((e: unknown) => ConnectError.from(e));
          if (!(alive instanceof ConnectError) || !alive.rawMessage.startsWith('CIPHERML_E_PROTOCOL')) throw new Error(`server not serving after a raw ${method.name} frame`);
          return;
        }
        if ('sessionId' in init || method.input.fields.some((f) => f.localName === 'sessionId')) {
          if (sessions.length > 0 && session % 2 === 0) init['sessionId'] = sessions[session % sessions.length];
        }
        const msg = create(method.input, init as never);
        const before = method.name === 'Join' ? JSON.stringify(server.inspect()) : '';
        try {
          const out = (await client[method.localName]!(msg)) as { sessionId?: string };
          byCode['ok'] = (byCode['ok'] ?? 0) + 1;
          if (method.name === 'Join' && typeof out.sessionId === 'string') sessions.push(out.sessionId);
        } catch (e) {
          const err = ConnectError.from(e);
          byCode[Code[err.code]] = (byCode[Code[err.code]] ?? 0) + 1;
          if (err.code === Code.Internal || err.code === Code.Unknown) throw new Error(`${method.name} → ${Code[err.code]}: ${err.rawMessage}`, { cause: e });
          if (err.code !== Code.ResourceExhausted && !/^CIPHERML_E_[A-Z_]+: /.test(err.rawMessage)) throw new Error(`${method.name} refused without a typed error: ${err.rawMessage}`, { cause: e });
          if (method.name === 'Join' && JSON.stringify(server.inspect()) !== before) throw new Error('a refused Join changed the join state', { cause: e });
        }
        const growth = process.memoryUsage().rss - rss0;
        maxGrowth = Math.max(maxGrowth, growth);
        if (growth > options.rssBoundBytes) throw new Error(`RSS grew by ${growth} bytes (bound ${options.rssBoundBytes})`);
        if (++done % RETAINED_EVERY === 0) {
          const retained = retainedBytes() - retained0;
          maxRetained = Math.max(maxRetained, retained);
          if (retained > retainedBound) throw new Error(`after ${done} calls the heap retains ${retained} more bytes than at the start (bound ${retainedBound})`);
        }
      }),
      { numRuns: options.numRuns, ...(options.seed === undefined ? {} : { seed: options.seed }), endOnFailure: true },
    );
    return { calls: Object.values(byCode).reduce((a, b) => a + b, 0), byCode, maxRssGrowthBytes: maxGrowth, maxRetainedGrowthBytes: maxRetained };
  } finally {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  }
}
