import { describe, expect, it } from 'vitest';
import { defences } from '../../src/core/defences.ts';
import { authorityKeyHolder } from '../../src/fl/authority.ts';
import { PaillierFedAvg } from '../../src/fl/strategy.ts';
import { createRpcTransport } from '../../src/fl/transport.ts';
import { MAX_MESSAGE_BYTES, PACKING, attackServer, dataClient, honestWorker, recorder, recording, startAuthority, usePaillierWorld } from './harness-fl.ts';
import { findLeak } from './leaks.ts';

// Adversary: an honest-but-curious aggregating server (key-holder "authority") that keeps every
// byte it receives. Claim: no worker's trained update appears in those bytes in any encoding
// (float64/float32, fixed point int32/int64, packed-slot offset form, either byte order, raw or
// FedAvg-weighted). The same test against the build with encryption disabled finds the updates.

describe('adversary: the server records every byte it receives (privacy of worker updates)', () => {
  const world = usePaillierWorld(2);

  async function run(name: string) {
    const authority = await startAuthority({ keyPair: world.pair, keyHolder: 'authority', secret: '', minContributions: 2, trust: world.parties.trust(world.parties.authority) });
    const received: Uint8Array[] = [];
    const holder = await authorityKeyHolder(createRpcTransport({ address: authority.address, maxMessageBytes: MAX_MESSAGE_BYTES }), { keyHolder: 'authority', secret: '', trust: world.parties.trust(world.parties.server), minKeyBits: 1024 });
    const server = attackServer({
      dir: world.dir,
      name,
      rounds: 2,
      strategy: new PaillierFedAvg(holder, PACKING),
      settings: { trust: world.parties.trust(world.parties.server) },
      interceptors: [recorder(received)],
    });
    const address = await server.listen();
    const running = server.run().then(() => null, (e: unknown) => e);
    const trained: Float64Array[] = [];
    const stop = new AbortController();
    const clients = await Promise.all([dataClient(1, 2), dataClient(2, 2)]);
    const workers = clients.map((c, i) =>
      honestWorker(address, { workerId: String(i + 1), client: recording(c, trained), trust: world.parties.trust(world.parties.workers[i]!), minKeyBits: 1024, signal: stop.signal, expect: { strategy: 'paillier', keyHolder: 'authority' } }).catch(() => null),
    );
    const error = await running;
    stop.abort();
    await server.close();
    await Promise.all(workers);
    await authority.close();
    const n = clients.map((c) => c.numExamples());
    return { received, trained, error, weights: n.map((k) => k / (n[0]! + n[1]!)) };
  }

  it('finds no update in any encoding with encryption, and finds them with encryption disabled', async () => {
    const secure = await run('secure');
    expect(secure.error).toBeNull();
    expect(secure.trained.length).toBeGreaterThanOrEqual(4);
    expect(secure.received.reduce((a, r) => a + r.length, 0)).toBeGreaterThan(1000);
    expect(findLeak(secure.trained, secure.weights, secure.received)).toBeNull();

    defences.encryptUpdates = false;
    const broken = await run('broken');
    expect(broken.trained.length).toBeGreaterThanOrEqual(1);
    expect(findLeak(broken.trained, broken.weights, broken.received)).not.toBeNull();
  });
});
