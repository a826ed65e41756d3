import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { Compile } from 'typebox/compile';
import { CkksContext, serializePublicContext } from '../../src/ckks/index.ts';
import { OPENAPI_DOCUMENT, encryptPredictData, encryptWeights, openStorage, startService } from '../../src/service/index.ts';
import { ckksBomb, deepJson } from '../../bench/bombs.ts';
import { rawRequest } from './http.ts';
import { snapshot } from './snapshot.ts';
import { RETAINED_EVERY, retainedBytes } from './memory.ts';

/**
 * Fuzzing every REST route, driven by the OpenAPI document: for each generated request (route,
 * path parameters, query, token, content type, body) the service must answer below 500, with a
 * status the document lists for that route and a body valid against the documented schema; a
 * refused request must leave the stored state unchanged; the main thread's heap retained after
 * full collections must stay within `retainedBoundBytes` (default 32 MiB) of its start, and the
 * process RSS (which also counts the heavy-work threads' SEAL heaps) below `rssBoundBytes` above
 * its level after warm-up (valid predictions and public-context uploads on both heavy-work
 * threads, so their SEAL heaps exist before the baseline).
 */

export interface FuzzReport {
  readonly requests: number;
  readonly byStatus: Record<string, number>;
  readonly maxRssGrowthBytes: number;
  readonly maxRetainedGrowthBytes: number;
}

type Op = { path: string; method: string; params: { name: string; in: string }[]; body: 'json' | 'binary' | 'none'; responses: Record<string, { content?: Record<string, { schema: unknown }> }> };

const doc = OPENAPI_DOCUMENT as unknown as { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: { content: Record<string, unknown> }; responses: Op['responses'] }>>; components: { schemas: Record<string, unknown> } };

function ops(): Op[] {
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      path,
      method: method.toUpperCase(),
      params: op.parameters ?? [],
      body: op.requestBody === undefined ? 'none' : 'application/json' in op.requestBody.content ? 'json' : 'binary',
      responses: op.responses,
    })),
  );
}

/** Whether a concrete path is an instance of an OpenAPI path template (`{param}` = one segment). */
function templateMatches(template: string, path: string): boolean {
  const pattern = template.split('/').map((seg) => (/^\{[^}]+\}$/.test(seg) ? '[^/]+' : seg.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))).join('/');
  return new RegExp(`^${pattern}$`).test(path);
}

function resolve(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(resolve);
  if (schema === null || typeof schema !== 'object') return schema;
  const s = schema as Record<string, unknown>;
  if (typeof s['$ref'] === 'string') return resolve(doc.components.schemas[s['$ref'].split('/').pop()!]);
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, resolve(v)]));
}

/** Flips one bit of an envelope and recomputes its CRC, so the damage reaches the body parser. */
function flip(bytes: Uint8Array, at: number, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  const i = at % Math.max(1, out.length - 4);
  out[i] = out[i]! ^ (1 << bit);
  if (out.length >= 32) new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)));
  return out;
}

/**
 * Runs `numRuns` generated requests against a fresh service on loopback; throws on the first
 * violation (fast-check shrinks it to a minimal request).
 *
 * @example
 * ```ts
 * await fuzzRest({ numRuns: 1000, seed: 1, rssBoundBytes: 256 << 20 });
 * ```
 */
export async function fuzzRest(options: { numRuns: number; seed?: number; rssBoundBytes: number; retainedBoundBytes?: number }): Promise<FuzzReport> {
  const root = mkdtempSync(join(tmpdir(), 'cipherml-fuzz-rest-'));
  const dataDir = join(root, 'data');
  const s = await openStorage({ dataDir });
  const tokens: Record<string, string> = {
    owner: await s.createToken((await s.ensureUser('owner', 'owner')).id),
    alice: await s.createToken((await s.ensureUser('alice', 'user')).id),
    garbage: 'cml_not-a-token',
  };
  await s.close();
  // The console's password hashes at scrypt N = 2^14 (16 MiB each) instead of the production 2^17
  // (128 MiB each, at most 2 at once: a fixed budget, tested in src/console/password.test.ts): the
  // RSS bound below is for memory that follows what requests carry, not for that budget.
  const svc = await startService({ dataDir, port: 0, maxBodyBytes: 4 << 20, console: { scryptCost: { N: 2 ** 14, r: 8, p: 1 } } });
  // Galois step 1: a 1-feature prediction (period 2) is valid, so the warm-up and the fuzz reach the prediction itself.
  const ctx = await CkksContext.create({ polyModulusDegree: 4096, coeffModulusBits: [40, 20, 40], scaleBits: 20 }, { galoisSteps: [1] });
  const byStatus: Record<string, number> = {};
  let maxGrowth = 0;
  try {
    const auth = (who: string) => (who === 'none' ? {} : { authorization: `Bearer ${tokens[who]!}` });
    const api = (p: string) => `${svc.url}${p}`;
    await rawRequest(api('/api/v1/m/1/deploy_model'), { method: 'POST', headers: auth('owner') });
    await rawRequest(api('/api/v1/m/1/application/register_user'), { method: 'POST', headers: auth('alice') });
    const pub = serializePublicContext(ctx);
    const ct = encryptPredictData(ctx, [[0.5]]);
    const bin = { 'content-type': 'application/octet-stream' };
    await rawRequest(api('/api/v1/m/1/context/public'), { method: 'PUT', headers: { ...auth('alice'), ...bin }, body: pub });
    await rawRequest(api('/api/v1/m/1/model/trained'), { method: 'PUT', headers: { ...auth('alice'), ...bin }, body: encryptWeights(ctx, [0.5], 0.25) });
    const bombs = [await ckksBomb('publicKey', 512 << 20), await ckksBomb('ciphertext', 512 << 20, ctx.fingerprint), await ckksBomb('ciphertext', 3 << 20, ctx.fingerprint)];
    const users = ['owner', 'alice'];
    // Warm-up before the RSS baseline: every heavy-work thread loads SEAL and grows its wasm heap
    // on its first CKKS task (a fixed cost per thread, not growth caused by the requests). Pairs
    // of concurrent valid requests make the pool start both threads (a second task arriving while
    // the first thread is busy spawns the second); each kind of heavy task runs on each thread.
    for (const send of [
      () => rawRequest(api('/api/v1/m/1/predict?features=1'), { method: 'POST', headers: { ...auth('alice'), ...bin }, body: ct }),
      () => rawRequest(api('/api/v1/m/1/context/public'), { method: 'PUT', headers: { ...auth('alice'), ...bin }, body: pub }),
    ]) {
      for (let round = 0; round < 2; round++) {
        const answers = await Promise.all([send(), send()]);
        if (answers.some((a) => a.status !== 200)) throw new Error(`warm-up request refused: ${answers.map((a) => `${a.status} ${a.body.slice(0, 200)}`).join('; ')}`);
      }
    }
    // The console's password hashing (scrypt on libuv's thread pool, at most 2 at once) also
    // reaches its working size before the baseline: two concurrent sign-ups.
    const accounts = await Promise.all(['warmup1', 'warmup2'].map((n) => rawRequest(api('/api/v1/console/signup'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: n, password: 'correct horse battery staple 42' }) })));
    if (accounts.some((a) => a.status !== 200)) throw new Error(`warm-up sign-up refused: ${accounts.map((a) => `${a.status} ${a.body.slice(0, 200)}`).join('; ')}`);
    const rss0 = process.memoryUsage().rss;
    const retained0 = retainedBytes();
    const retainedBound = options.retainedBoundBytes ?? 32 << 20;
    let maxRetained = 0;
    let done = 0;

    const operations = ops();
    const validators = new Map<string, { Check(v: unknown): boolean }>();
    const validatorFor = (op: Op, status: string) => {
      const key = `${op.method} ${op.path} ${status}`;
      let v = validators.get(key);
      if (v === undefined) {
        const schema = op.responses[status]?.content?.['application/json']?.schema;
        v = schema === undefined ? { Check: () => true } : Compile(resolve(schema) as never);
        validators.set(key, v);
      }
      return v;
    };
    const name = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('m', '1') }, { weight: 1, arbitrary: fc.string({ maxLength: 80 }) }, { weight: 1, arbitrary: fc.constantFrom('x'.repeat(200), '..', '%00', 'a/b', '') });
    const binary = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.constantFrom(...bombs),
      fc.tuple(fc.constantFrom(pub, ct), fc.nat(), fc.integer({ min: 0, max: 7 })).map(([b, at, bit]) => flip(b, at, bit)),
      fc.tuple(fc.constantFrom(pub, ct), fc.nat()).map(([b, n]) => b.subarray(0, n % b.length)),
      fc.constantFrom(pub, ct),
    );
    const json = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.integer({ min: -5, max: 5000 }).map((k) => JSON.stringify({ batchSize: k })),
      fc.record({ numberOfEpochs: fc.integer({ min: -1, max: 200 }), learningRate: fc.double(), numberOfFeatures: fc.integer({ min: 0, max: 5000 }) }).map((v) => JSON.stringify(v)),
      fc.integer({ min: 1, max: 6000 }).map((d) => deepJson(d)),
      fc.constantFrom('{', '{"batchSize":NaN}', '{"batchSize":1e400}', '{"__proto__":{"batchSize":1}}', '', 'null', '[]'),
    );
    const request = fc.record({
      op: fc.constantFrom(...operations),
      model: name,
      version: name,
      jobId: fc.oneof(fc.uuid(), fc.string({ maxLength: 40 })),
      features: fc.oneof(fc.integer({ min: -2, max: 5000 }).map(String), fc.constantFrom('NaN', 'Infinity', '1e309', '', 'abc')),
      who: fc.constantFrom('none', 'garbage', 'alice', 'owner', 'alice', 'alice'),
      binary,
      json,
      wrongType: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    });

    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        let path = r.op.path.replace('{model}', encodeURIComponent(r.model)).replace('{version}', encodeURIComponent(r.version)).replace('{jobId}', encodeURIComponent(r.jobId));
        if (r.op.params.some((p) => p.in === 'query')) path += `?features=${encodeURIComponent(r.features)}`;
        const headers: Record<string, string> = { ...auth(r.who) };
        let body: string | Uint8Array | undefined;
        if (r.op.body === 'binary') {
          headers['content-type'] = r.wrongType ? 'application/json' : 'application/octet-stream';
          body = r.binary;
        } else if (r.op.body === 'json') {
          headers['content-type'] = r.wrongType ? 'application/octet-stream' : 'application/json';
          body = r.json;
        }
        const mutating = r.op.method !== 'GET';
        const before = mutating ? await snapshot(svc.storage, users) : undefined;
        const res = await rawRequest(api(path), { method: r.op.method, headers, ...(body === undefined ? {} : { body }) });
        byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
        if (res.status >= 500) throw new Error(`${r.op.method} ${path} → ${res.status}: ${res.body.slice(0, 300)}`);
        const status = String(res.status);
        // A '.' or '..' path parameter is a dot segment: the URL parser removes it before sending
        // (RFC 3986 §5.2.4; WHATWG URL also for %2E), so the request reaches whichever documented
        // route the resolved path names, and is checked against that route's responses.
        const sent = new URL(path, 'http://fuzz.invalid').pathname;
        const target = sent === path.split('?')[0] ? r.op : (operations.find((o) => o.method === r.op.method && templateMatches(o.path, sent)) ?? r.op);
        if (!(status in target.responses)) throw new Error(`${target.method} ${target.path} answered undocumented ${status}: ${res.body.slice(0, 300)}`);
        const type = String(res.headers['content-type'] ?? '');
        if (type.startsWith('application/json')) {
          const parsed = JSON.parse(res.body) as unknown;
          if (!validatorFor(target, status).Check(parsed)) throw new Error(`${target.method} ${target.path} ${status} body does not match its schema (sent ${r.op.method} ${path}): ${res.body.slice(0, 300)}`);
        } else if (res.status >= 400) throw new Error(`${status} without a typed JSON error body (${type})`);
        if (mutating && res.status >= 400) {
          const after = await snapshot(svc.storage, users);
          if (JSON.stringify(after) !== JSON.stringify(before)) throw new Error(`refused ${r.op.method} ${path} (${status}) changed the stored state`);
        }
        const growth = process.memoryUsage().rss - rss0;
        maxGrowth = Math.max(maxGrowth, growth);
        if (growth > options.rssBoundBytes) throw new Error(`RSS grew by ${growth} bytes (bound ${options.rssBoundBytes})`);
        if (++done % RETAINED_EVERY === 0) {
          const retained = retainedBytes() - retained0;
          maxRetained = Math.max(maxRetained, retained);
          if (retained > retainedBound) throw new Error(`after ${done} requests the heap retains ${retained} more bytes than at the start (bound ${retainedBound})`);
        }
      }),
      { numRuns: options.numRuns, ...(options.seed === undefined ? {} : { seed: options.seed }), endOnFailure: true },
    );
    return { requests: Object.values(byStatus).reduce((a, b) => a + b, 0), byStatus, maxRssGrowthBytes: maxGrowth, maxRetainedGrowthBytes: maxRetained };
  } finally {
    ctx.delete();
    await svc.close();
    rmSync(root, { recursive: true, force: true });
  }
}
