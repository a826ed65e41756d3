import { X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import type { PeerCertificate } from 'node:tls';
import type { Interceptor, Transport } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { expectBinding, verifyReport, type AttestationPolicy, type AttestationResult } from '../attest/index.ts';
import { defences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import { deserializePublicKey } from '../paillier/index.ts';
import type { JoinResponse } from '../fl/gen/cipherml/fl/v1/fl_pb.ts';
import { parseAddress } from '../fl/transport.ts';
import { ATTESTATION_PATH, type AttestationBundle } from './aggregator.ts';
import { spkiOf } from './tls.ts';

/**
 * What a worker with `--require-attestation` does before it sends anything (issue 15):
 * 1. opens a TLS connection to the aggregator, takes the TLS key of that connection, and fetches
 *    the attestation bundle over it (no worker data is sent: one GET with no body);
 * 2. verifies the document with src/attest under its policy (kind, measurement, simulation
 *    allowed or not, pinned simulator key, TCB, debug) and that its report data binds
 *    SHA-256(Paillier key ‖ that TLS key ‖ run id), and, when the worker was told the run id,
 *    that it is this run;
 * 3. dials the gRPC channel pinned to exactly that TLS key, and accepts the join reply only when
 *    it carries the attested Paillier key and run id (a key substituted after attestation is
 *    refused before any update is encrypted under it).
 * With the defence off (test hook, src/core/defences.ts) steps 2 and 3 are skipped: the broken
 * build trusts whatever the aggregator says.
 */

/** The outcome of {@link attestAggregator}. */
export interface AttestedAggregator {
  /** The verification result (null only in the broken build of the adversarial suite). */
  readonly result: AttestationResult | null;
  readonly runId: string;
  readonly paillierPublicKey: Uint8Array;
  readonly paillierFingerprint: string;
  /** PEM of the certificate the worker saw on the attested connection. */
  readonly certPem: string;
  readonly tlsSpki: Uint8Array;
  readonly isolation: string;
}

const MAX_BUNDLE_BYTES = 64 * 1024;

const bytesEqualPublic = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

function refuse(code: 'CIPHERML_E_ATTESTATION_MALFORMED' | 'CIPHERML_E_ATTESTATION_REPORT_DATA' | 'CIPHERML_E_PEER_UNAVAILABLE', problem: string, param: string, cause?: unknown): never {
  throw new CipherMLError(code, problem, { param, ...(cause === undefined ? {} : { cause }) });
}

/** Fetches the bundle over TLS and returns it with the certificate of that very connection. */
async function fetchBundle(address: string, timeoutMs: number): Promise<{ bundle: AttestationBundle; cert: X509Certificate }> {
  const { host, port } = parseAddress(address, '--server');
  const h = host.includes(':') ? `[${host}]` : host;
  // The certificate is not trusted through a CA: the attestation below is what vouches for it.
  const session = http2.connect(`https://${h}:${port}`, { rejectUnauthorized: false });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `no attestation from ${address} within ${timeoutMs} ms`, { param: '--server' })), timeoutMs);
      session.once('error', (e) => {
        clearTimeout(timer);
        reject(new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `cannot reach the aggregator at ${address} over TLS: ${e.message}`, { param: '--server', cause: e }));
      });
      const req = session.request({ ':path': ATTESTATION_PATH, ':method': 'GET' });
      req.end();
      const chunks: Buffer[] = [];
      let size = 0;
      let status = 0;
      req.on('response', (hdr) => {
        status = Number(hdr[':status']);
      });
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BUNDLE_BYTES) {
          req.close();
          clearTimeout(timer);
          reject(new CipherMLError('CIPHERML_E_ATTESTATION_MALFORMED', `the attestation bundle exceeds ${MAX_BUNDLE_BYTES} bytes`, { param: 'attestation' }));
        } else chunks.push(c);
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(new CipherMLError('CIPHERML_E_PEER_UNAVAILABLE', `cannot fetch an attestation from ${address} over TLS (an attested aggregator serves one at ${ATTESTATION_PATH}): ${e.message}`, { param: '--server', cause: e }));
      });
      req.on('end', () => {
        clearTimeout(timer);
        const peer = (session.socket as unknown as { getPeerCertificate(detailed: boolean): PeerCertificate }).getPeerCertificate(false);
        try {
          if (status !== 200) refuse('CIPHERML_E_ATTESTATION_MALFORMED', `the server at ${address} publishes no attestation (HTTP ${status} at ${ATTESTATION_PATH}): it is not an attested aggregator`, 'attestation');
          if (peer?.raw === undefined) refuse('CIPHERML_E_ATTESTATION_MALFORMED', 'the connection presented no certificate', 'tls');
          let bundle: AttestationBundle;
          try {
            bundle = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AttestationBundle;
          } catch (e) {
            refuse('CIPHERML_E_ATTESTATION_MALFORMED', 'the attestation bundle is not JSON', 'attestation', e);
          }
          for (const k of ['kind', 'document', 'paillierPublicKey', 'runId'] as const) {
            if (typeof bundle[k] !== 'string') refuse('CIPHERML_E_ATTESTATION_MALFORMED', `the attestation bundle has no string field ${k}`, `attestation.${k}`);
          }
          resolve({ bundle, cert: new X509Certificate(peer.raw) });
        } catch (e) {
          reject(e);
        }
      });
    });
  } finally {
    session.close();
  }
}

/**
 * Fetches and verifies the aggregator's attestation on a TLS connection to `address`.
 *
 * @example
 * ```ts
 * const a = await attestAggregator('127.0.0.1:9091', policy, { runId: 'expected-run' });
 * console.log(a.result?.isolation);
 * ```
 */
export async function attestAggregator(address: string, policy: AttestationPolicy, options: { runId?: string; timeoutMs?: number; at?: Date } = {}): Promise<AttestedAggregator> {
  const { bundle, cert } = await fetchBundle(address, options.timeoutMs ?? 10_000);
  const tlsSpki = spkiOf(cert);
  const paillierPublicKey = new Uint8Array(Buffer.from(bundle.paillierPublicKey, 'base64'));
  const fingerprint = deserializePublicKey(paillierPublicKey).fingerprint;
  let result: AttestationResult | null = null;
  if (defences.attestationCheck) {
    if (bundle.kind !== 'simulation' && bundle.kind !== (policy.kind ?? bundle.kind)) refuse('CIPHERML_E_ATTESTATION_MALFORMED', `the aggregator sent a ${bundle.kind} document`, 'attestation.kind');
    result = verifyReport({ kind: bundle.kind, document: Buffer.from(bundle.document, 'base64') }, policy, options.at === undefined ? {} : { at: options.at });
    expectBinding(result, { paillierPublicKey, tlsPublicKey: tlsSpki, runId: bundle.runId });
    if (options.runId !== undefined && options.runId !== '' && options.runId !== bundle.runId) {
      refuse('CIPHERML_E_ATTESTATION_REPORT_DATA', `the attestation binds run ${bundle.runId}, this worker joins run ${options.runId}: a document of another run`, 'run-id');
    }
  }
  return { result, runId: bundle.runId, paillierPublicKey, paillierFingerprint: fingerprint, certPem: cert.toString(), tlsSpki, isolation: result?.isolation ?? bundle.isolation ?? 'unverified' };
}

/**
 * The gRPC transport to an attested aggregator: TLS that accepts only the attested certificate's
 * key (SubjectPublicKeyInfo compared byte for byte). The broken build accepts any certificate.
 *
 * @example
 * ```ts
 * const transport = attestedTransport('127.0.0.1:9091', attested, 64 << 20);
 * ```
 */
export function attestedTransport(address: string, a: AttestedAggregator, maxMessageBytes: number, interceptors?: Interceptor[]): Transport {
  const { host, port } = parseAddress(address, '--server');
  const h = host.includes(':') ? `[${host}]` : host;
  const pinned = defences.attestationCheck;
  return createGrpcTransport({
    baseUrl: `https://${h}:${port}`,
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    nodeOptions: pinned
      ? {
          ca: a.certPem,
          checkServerIdentity: (_host: string, peer: PeerCertificate) =>
            bytesEqualPublic(spkiOf(new X509Certificate(peer.raw)), a.tlsSpki) ? undefined : new Error('the server presented a TLS key other than the attested one'),
        }
      : { rejectUnauthorized: false },
    ...(interceptors === undefined ? {} : { interceptors }),
  });
}

/**
 * The `attestedKey` hook of {@link runWorker}: the join reply must announce Paillier and carry
 * the attested Paillier key and run id; returns the fingerprint the worker then pins. The broken
 * build pins whatever key the reply offers.
 *
 * @example
 * ```ts
 * await runWorker({ ..., transport: attestedTransport(addr, a, max), attestedKey: attestedKey(a) });
 * ```
 */
export function attestedKey(a: AttestedAggregator): (reply: JoinResponse) => string {
  return (reply) => {
    if (!defences.attestationCheck) return deserializePublicKey(reply.publicKey).fingerprint;
    if (reply.strategy !== 'paillier') {
      throw new CipherMLError('CIPHERML_E_DOWNGRADE', `the attested aggregator announced strategy "${reply.strategy}"; an attested run is Paillier FedAvg with the key in the enclave`, { param: 'strategy' });
    }
    if (!bytesEqualPublic(reply.publicKey, a.paillierPublicKey)) {
      let offered = 'unparseable';
      try {
        offered = deserializePublicKey(reply.publicKey).fingerprint;
      } catch {
        // the fingerprint is only for the message
      }
      throw new CipherMLError('CIPHERML_E_ATTESTATION_REPORT_DATA', `the aggregator's join reply offers Paillier key ${offered}, but its attestation binds ${a.paillierFingerprint}: a key substituted after attestation; nothing was encrypted or sent`, { param: 'publicKey', details: { offered, attested: a.paillierFingerprint } });
    }
    if (reply.runId !== a.runId) {
      throw new CipherMLError('CIPHERML_E_ATTESTATION_REPORT_DATA', `the aggregator's join reply names run ${reply.runId}, its attestation binds run ${a.runId}`, { param: 'runId' });
    }
    return a.paillierFingerprint;
  };
}
