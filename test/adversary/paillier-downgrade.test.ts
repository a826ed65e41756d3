import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { defences } from '../../src/core/defences.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { FederatedService } from '../../src/fl/gen/cipherml/fl/v1/fl_pb.ts';
import { PROTOCOL_VERSION } from '../../src/fl/protocol.ts';
import { createRpcTransport, startRpcServer, usesTls } from '../../src/fl/transport.ts';
import { MAX_MESSAGE_BYTES, ScriptedServer, dataClient, honestWorker, makeParties, recorder, recording, resetDefences, rpcCode, tempDir, type Parties } from './harness-fl.ts';
import { findLeak } from './leaks.ts';

// Adversary: a malicious server (or network position) that downgrades protection to cleartext:
// (1) the server announces strategy "plain" (or a weaker key holder) to workers configured for
// Paillier, so they would send their parameters in the clear; (2) a party expecting TLS is served
// plaintext; (3) a party is made to serve or connect in plaintext off loopback. Claims: workers
// refuse the announcement with a typed DOWNGRADE error before sending any parameter (against the
// build without the check, the server receives the parameters); a TLS client never sends a request
// to a plaintext server; plaintext off loopback needs --insecure-plaintext; mutual TLS refuses a
// client without a certificate.

describe('adversary: cleartext downgrade', () => {
  let parties: Parties;
  let dir: string;
  beforeAll(async () => {
    parties = makeParties(1);
    dir = await tempDir('downgrade');
  });
  afterEach(() => resetDefences());
  afterAll(async () => {
    resetDefences();
    await rm(dir, { recursive: true, force: true });
  });

  it('a server announcing strategy "plain" or another key holder is refused before any parameter leaves; the broken build sends them', async () => {
    const plain = new ScriptedServer(() => ({ strategy: 'plain', keyHolder: 'none' }));
    const address = await plain.listen();
    const trained: Float64Array[] = [];
    const refused = await honestWorker(address, { workerId: '1', client: recording(await dataClient(1, 2), trained), trust: parties.trust(parties.workers[0]!) }).catch((e: unknown) => e);
    expect(isCipherMLError(refused, 'CIPHERML_E_DOWNGRADE')).toBe(true);
    expect(plain.results).toHaveLength(0);

    // Configured expectation without a roster (development mode) holds as well.
    const flagged = await honestWorker(address, { workerId: '1', client: await dataClient(1, 2), trust: null, expect: { strategy: 'paillier' } }).catch((e: unknown) => e);
    expect(isCipherMLError(flagged, 'CIPHERML_E_DOWNGRADE')).toBe(true);
    expect((flagged as { param?: string }).param).toBe('strategy');
    await plain.close();

    const otherHolder = new ScriptedServer(() => ({ strategy: 'paillier', keyHolder: 'server' }));
    const a2 = await otherHolder.listen();
    const holder = await honestWorker(a2, { workerId: '1', client: await dataClient(1, 2), trust: null, expect: { strategy: 'paillier', keyHolder: 'authority' } }).catch((e: unknown) => e);
    expect(isCipherMLError(holder, 'CIPHERML_E_DOWNGRADE')).toBe(true);
    await otherHolder.close();

    // Broken build (announcements trusted): the worker trains and sends its parameters in the clear.
    defences.announcementCheck = false;
    const evil = new ScriptedServer(() => ({ strategy: 'plain', keyHolder: 'none' }));
    const a3 = await evil.listen();
    const leaked: Float64Array[] = [];
    await honestWorker(a3, { workerId: '1', client: recording(await dataClient(1, 2), leaked), trust: parties.trust(parties.workers[0]!) });
    await evil.close();
    expect(findLeak(leaked, [], evil.received)).not.toBeNull();
  });

  it('TLS: plaintext off loopback needs --insecure-plaintext, an empty tls-ca means system roots, a TLS client never talks to a plaintext server, mutual TLS needs a client certificate', async () => {
    // Listening in plaintext on a non-loopback address is refused without the flag.
    const noFlag = await startRpcServer({ address: '0.0.0.0:0', routes: () => undefined, maxMessageBytes: 1024 }).then(async (s) => (await s.close(), 'ok'), (e: unknown) => (isCipherMLError(e) ? e.code : String(e)));
    expect(noFlag).toBe('CIPHERML_E_INSECURE_TRANSPORT'); // refused before binding: tests listen on loopback only
    // Connecting: TLS off loopback by default, also with an empty tls-ca; plaintext only with the flag.
    expect(usesTls('10.1.2.3:9091')).toBe(true);
    expect(usesTls('server.example:9091', { tls: { ca: '' } })).toBe(true);
    expect(usesTls('10.1.2.3:9091', { insecurePlaintext: true })).toBe(false);
    expect(usesTls('127.0.0.1:9091')).toBe(false);
    expect(usesTls('127.0.0.1:9091', { tls: { ca: 'ca.pem' } })).toBe(true);

    // Certificates: a CA, a server certificate and a client certificate it signed.
    const f = (n: string) => join(dir, n);
    const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=cipherml-test-ca');
    await writeFile(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    for (const who of ['server', 'client']) {
      ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who === 'server' ? 'localhost' : 'worker-1'}`);
      ossl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '1', '-extfile', f('san.ext'));
    }

    // A worker expecting TLS against a plaintext server: the connection fails and no request reaches it.
    const received: Uint8Array[] = [];
    const plaintext = await startRpcServer({
      address: '127.0.0.1:0',
      maxMessageBytes: MAX_MESSAGE_BYTES,
      interceptors: [recorder(received)],
      routes: (r) => r.service(FederatedService, { join: () => ({ sessionId: 'x' }) }),
    });
    const join1 = { protocolVersion: PROTOCOL_VERSION, workerId: '1', instanceId: 'i', token: 'secret-token', numExamples: 1n, model: [] };
    const tlsClient = createClient(FederatedService, createRpcTransport({ address: plaintext.address, maxMessageBytes: MAX_MESSAGE_BYTES, tls: { ca: f('ca.pem') } }));
    expect(await rpcCode(tlsClient.join(join1))).toBe('CIPHERML_E_PEER_UNAVAILABLE');
    expect(received).toHaveLength(0);
    // The same request from a client that does not insist on TLS reaches it in the clear (what the defence prevents).
    const plainClient = createClient(FederatedService, createRpcTransport({ address: plaintext.address, maxMessageBytes: MAX_MESSAGE_BYTES }));
    expect(await rpcCode(plainClient.join(join1))).toBe('ok');
    expect(Buffer.concat(received).includes(Buffer.from('secret-token'))).toBe(true);
    await plaintext.close();

    // Mutual TLS: the server requires a certificate from the CA.
    const mtls = await startRpcServer({
      address: '127.0.0.1:0',
      maxMessageBytes: MAX_MESSAGE_BYTES,
      tls: { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') },
      routes: (r) => r.service(FederatedService, { join: () => ({ sessionId: 'ok' }) }),
    });
    const anonymous = createClient(FederatedService, createRpcTransport({ address: mtls.address, maxMessageBytes: MAX_MESSAGE_BYTES, tls: { ca: f('ca.pem') } }));
    expect(await rpcCode(anonymous.join(join1))).toBe('CIPHERML_E_PEER_UNAVAILABLE');
    const certified = createClient(FederatedService, createRpcTransport({ address: mtls.address, maxMessageBytes: MAX_MESSAGE_BYTES, tls: { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') } }));
    expect((await certified.join(join1)).sessionId).toBe('ok');
    await mtls.close();
  });
});
