import { createClient, type Client } from '@connectrpc/connect';
import { generateIdentity, publicIdentity, Roster, type Identity } from '../../src/core/identity.ts';
import { encryptPacked, serializePacked, type PackingSpec } from '../../src/paillier/index.ts';
import type { DecryptionShare } from '../../src/paillier/threshold.ts';
import { dealFromSafePrimes, type DealtThresholdKey } from '../../src/paillier/threshold-dealer.ts';
import { deserializeDecryptionShares } from '../../src/paillier/threshold-serialize.ts';
import { ThresholdKeyHolderService } from '../../src/fl/gen/cipherml/fl/v1/threshold_pb.ts';
import { PROTOCOL_VERSION } from '../../src/fl/protocol.ts';
import { sealContribution } from '../../src/fl/contribution.ts';
import { ThresholdKeyHolder, type HolderTestHooks } from '../../src/fl/threshold-holder.ts';
import { createRpcTransport, startRpcServer, type RpcServer } from '../../src/fl/transport.ts';
import { THRESHOLD_KAT } from '../fixtures/threshold.ts';

/**
 * Threshold key holders served over real gRPC on loopback, honest worker identities, and a
 * malicious-server client that talks to the holders directly (adversarial suites).
 */

export const PACKING: PackingSpec = { fractionalBits: 16, integerBits: 15, maxContributions: 1000 };

export interface HolderParty {
  readonly holder: ThresholdKeyHolder;
  readonly server: RpcServer;
  readonly client: Client<typeof ThresholdKeyHolderService>;
}

export interface ThresholdWorld {
  readonly dealt: DealtThresholdKey;
  readonly workers: readonly Identity[];
  readonly roster: Roster;
  readonly holders: readonly HolderParty[];
  close(): Promise<void>;
}

/** A 2-of-3 key from the fixture primes, `workerCount` worker identities, and 3 holders on loopback. */
export async function thresholdWorld(options: { workerCount?: number; minContributions?: number; hooks?: readonly (HolderTestHooks | undefined)[]; dealt?: DealtThresholdKey } = {}): Promise<ThresholdWorld> {
  const dealt = options.dealt ?? dealFromSafePrimes(THRESHOLD_KAT.p, THRESHOLD_KAT.q, { holders: 3, threshold: 2 });
  const workers = Array.from({ length: options.workerCount ?? 3 }, (_, i) => generateIdentity('worker', String(i + 1)));
  const roster = new Roster(workers.map(publicIdentity));
  const holders = await Promise.all(
    dealt.shares.map(async (share, i) => {
      const hooks = options.hooks?.[i];
      const holder = new ThresholdKeyHolder({ share, roster, minContributions: options.minContributions ?? 2, ...(hooks === undefined ? {} : { testHooks: hooks }) });
      const server = await startRpcServer({ address: '127.0.0.1:0', routes: (r) => holder.routes(r), maxMessageBytes: 16 << 20 });
      const client = createClient(ThresholdKeyHolderService, createRpcTransport({ address: server.address, maxMessageBytes: 16 << 20 }));
      return { holder, server, client };
    }),
  );
  return { dealt, workers, roster, holders, close: async () => void (await Promise.all(holders.map((h) => h.server.close()))) };
}

/** An honest worker's signed contribution of `values` to (run, round). */
export function contribution(world: ThresholdWorld, worker: Identity, runId: string, round: number, values: readonly number[], weight = 0.25, numExamples = 100): Uint8Array {
  const packed = serializePacked(encryptPacked(world.dealt.publicKey.paillier, values, { packing: PACKING }));
  return sealContribution(worker, { runId, round, weight, numExamples, workerId: worker.id, keyFingerprint: world.dealt.publicKey.fingerprint }, packed);
}

/** Asks holder `i` (0-based) over gRPC to decrypt; returns its decryption shares or the error code. */
export async function ask(world: ThresholdWorld, i: number, runId: string, round: number, contributions: readonly Uint8Array[], count: number): Promise<DecryptionShare[] | string> {
  try {
    const r = await world.holders[i]!.client.decryptContributions({ protocolVersion: PROTOCOL_VERSION, runId, round, contributions: contributions.map((c) => ({ contribution: c })) });
    return deserializeDecryptionShares(world.dealt.publicKey, r.shares, count).shares;
  } catch (e) {
    const m = /CIPHERML_E_[A-Z_]+/.exec(e instanceof Error ? e.message : String(e));
    return m === null ? `untyped: ${String(e)}` : m[0];
  }
}
