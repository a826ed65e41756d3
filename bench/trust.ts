import { createClient, createRouterTransport } from '@connectrpc/connect';
import { Roster, generateIdentity, publicIdentity } from '../src/core/identity.ts';
import { KeyAuthority } from '../src/fl/authority.ts';
import { KeyAuthorityService } from '../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { SIG_CONTEXT, signRequest } from '../src/fl/identity-auth.ts';
import { contributionKeyId, sealContribution } from '../src/fl/contribution.ts';
import { PROTOCOL_VERSION, deriveToken } from '../src/fl/protocol.ts';
import { PackedCiphertext, deserializePacked, encryptVector, generatePaillierKeyPair, serializePacked } from '../src/paillier/index.ts';

/**
 * `cipherml bench trust`: what the contribution floor costs the key authority per round
 * (key-holder "authority"). Baseline, in the same run: the development-mode authority that
 * decrypts the one vector the server summed and trusts its header count. Identity mode: the
 * authority verifies the server's request and every worker's contribution signature, checks and
 * multiplies the contributions itself, then decrypts the product. Both go through the same
 * in-memory ConnectRPC transport (protobuf encode/decode included, no sockets); only the
 * authority's work is timed (the server's sum for the baseline is done before the clock starts).
 * Also: a worker's contribution signature against its encryption of the same update.
 */

/** Options of {@link runTrustBench}. */
export interface TrustBenchOptions {
  readonly keyBits: number;
  readonly params: number;
  readonly clients: number;
  readonly runs: number;
  readonly onProgress?: (line: string) => void;
}

/** Result of {@link runTrustBench} (medians over `runs`, ms wall-clock on this machine). */
export interface TrustBenchResult {
  readonly keyBits: number;
  readonly params: number;
  readonly clients: number;
  readonly runs: number;
  readonly ciphertextsPerUpdate: number;
  /** Authority, development mode: decrypt the server's sum (header count trusted). */
  readonly baselineAuthorityMs: number;
  /** Authority, identity mode: verify, check, multiply, decrypt. */
  readonly floorAuthorityMs: number;
  readonly ratio: number;
  /** Bytes the server sends the authority per round in each mode. */
  readonly baselineBytes: number;
  readonly floorBytes: number;
  /** One worker: encrypting its update, and signing the ciphertext bytes. */
  readonly workerEncryptMs: number;
  readonly workerSignMs: number;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * @example
 * ```ts
 * const r = await runTrustBench({ keyBits: 2048, params: 10_000, clients: 10, runs: 3 });
 * console.log(formatTrustBench(r));
 * ```
 */
export async function runTrustBench(o: TrustBenchOptions): Promise<TrustBenchResult> {
  const log = o.onProgress ?? (() => undefined);
  log(`generating a ${o.keyBits}-bit key and ${o.clients} identities`);
  const pair = await generatePaillierKeyPair({ bits: o.keyBits });
  const server = generateIdentity('server', 'server');
  const authorityId = generateIdentity('authority', 'authority');
  const workers = Array.from({ length: o.clients }, (_, i) => generateIdentity('worker', String(i + 1)));
  const roster = new Roster([server, authorityId, ...workers].map(publicIdentity));
  const packing = { fractionalBits: 16, integerBits: 15, maxContributions: 1000 };

  log(`encrypting ${o.clients} updates of ${o.params} values`);
  const encryptMs: number[] = [];
  const updates: Uint8Array[] = [];
  for (let i = 0; i < o.clients; i++) {
    const values = Float64Array.from({ length: o.params }, (_, k) => Math.sin(i * 7 + k) / o.clients);
    const t0 = performance.now();
    updates.push(serializePacked(await encryptVector(pair.publicKey, values, { packing, parallelism: 0 })));
    encryptMs.push(performance.now() - t0);
  }
  const signMs: number[] = [];
  const keyId = contributionKeyId(pair.publicKey);
  const signed = updates.map((u, i) => {
    const t0 = performance.now();
    const s = sealContribution(workers[i]!, { runId: 'bench', round: 1, weight: 1 / o.clients, numExamples: 100, workerId: String(i + 1), keyFingerprint: keyId }, u);
    signMs.push(performance.now() - t0);
    return s;
  });
  const sum = serializePacked(PackedCiphertext.sum(updates.map((u) => deserializePacked(pair.publicKey, u))));
  const ciphertextsPerUpdate = deserializePacked(pair.publicKey, updates[0]!).values.length;

  const dev = createClient(KeyAuthorityService, createRouterTransport((r) => new KeyAuthority({ keyPair: pair, keyHolder: 'authority', secret: 's', minContributions: o.clients }).routes(r)));
  const idm = createClient(KeyAuthorityService, createRouterTransport((r) => new KeyAuthority({ keyPair: pair, keyHolder: 'authority', secret: '', minContributions: o.clients, trust: { identity: authorityId, roster } }).routes(r)));
  const token = deriveToken('s', 'server');
  const contributions = signed.map((contribution) => ({ contribution }));
  const base: number[] = [];
  const floor: number[] = [];
  for (let run = 0; run < o.runs; run++) {
    log(`run ${run + 1}/${o.runs}: baseline, then the contribution floor`);
    let t0 = performance.now();
    await dev.decryptAggregate({ protocolVersion: PROTOCOL_VERSION, token, partyId: 'server', round: run + 1, packed: sum });
    base.push(performance.now() - t0);
    // Contributions are signed for round 1; a fresh authority per run keeps "each round once" satisfied.
    const fresh = run === 0 ? idm : createClient(KeyAuthorityService, createRouterTransport((r) => new KeyAuthority({ keyPair: pair, keyHolder: 'authority', secret: '', minContributions: o.clients, trust: { identity: authorityId, roster } }).routes(r)));
    const sig = signRequest(server, SIG_CONTEXT.authorityRequest, ['decryptAggregate', '1'], authorityId.fingerprint);
    t0 = performance.now();
    await fresh.decryptAggregate({ protocolVersion: PROTOCOL_VERSION, token: '', partyId: 'server', round: 1, packed: new Uint8Array(0), contributions, ...sig });
    floor.push(performance.now() - t0);
  }
  const baselineAuthorityMs = median(base);
  const floorAuthorityMs = median(floor);
  return {
    keyBits: o.keyBits,
    params: o.params,
    clients: o.clients,
    runs: o.runs,
    ciphertextsPerUpdate,
    baselineAuthorityMs,
    floorAuthorityMs,
    ratio: floorAuthorityMs / baselineAuthorityMs,
    baselineBytes: sum.length,
    floorBytes: updates.reduce((a, u) => a + u.length + 64 + 4, 0),
    workerEncryptMs: median(encryptMs),
    workerSignMs: median(signMs),
  };
}

/** The result as a table. */
export function formatTrustBench(r: TrustBenchResult): string {
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const mb = (x: number) => `${(x / 1e6).toFixed(3)} MB`;
  return [
    `Contribution floor at the key authority: ${r.clients} clients × ${r.params} values (${r.ciphertextsPerUpdate} ciphertexts each), ${r.keyBits}-bit key, median of ${r.runs}`,
    '',
    '| party | work | baseline (dev mode: decrypt the server\'s sum) | identity mode (verify, multiply, decrypt) | ratio |',
    '|---|---|---|---|---|',
    `| key authority | per round | ${ms(r.baselineAuthorityMs)} | ${ms(r.floorAuthorityMs)} | ${r.ratio.toFixed(2)}× |`,
    `| server → authority | bytes per round | ${mb(r.baselineBytes)} | ${mb(r.floorBytes)} | ${(r.floorBytes / r.baselineBytes).toFixed(1)}× |`,
    `| worker | per update | encrypt ${ms(r.workerEncryptMs)} | + sign ${ms(r.workerSignMs)} | ${((r.workerEncryptMs + r.workerSignMs) / r.workerEncryptMs).toFixed(3)}× |`,
  ].join('\n');
}
