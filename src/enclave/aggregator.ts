import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http2 from 'node:http2';
import { join } from 'node:path';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { createSimulationReport, reportDataBinding, seal, unseal, SIMULATION_LABEL } from '../attest/index.ts';
import { CipherMLError } from '../core/errors.ts';
import { writeFileSafely } from '../core/io.ts';
import { deserializePrivateKey, generatePaillierKeyPair, serializePrivateKey, serializePublicKey, type PackingSpec, type PaillierPrivateKey } from '../paillier/index.ts';
import { FlServer, type FlServerOptions, type RunSummary, type ServerEvent, type ServerSettings } from '../fl/server.ts';
import type { PartyTrust } from '../fl/identity-auth.ts';
import { listenHttp2, parseAddress } from '../fl/transport.ts';
import { EnclaveFedAvg } from './strategy.ts';
import { enclaveTlsFromPem, generateEnclaveTls, type EnclaveTls } from './tls.ts';

/**
 * The attested aggregator (issue 15; Intel HLR's parameter server under Gramine-SGX): at its first
 * start it generates its Paillier key pair and its TLS key inside the enclave, seals them (with
 * the run id and, after every round, the server checkpoint) to its measurement
 * (src/attest/seal.ts), and publishes an attestation document whose report data is
 * SHA-256(Paillier public key ‖ TLS public key ‖ run id) (src/attest/binding.ts). A restart with
 * the same measurement and sealing secret resumes from the sealed state; another build cannot
 * open it. Nothing secret is written unsealed: the run folder holds only `enclave.sealed`,
 * history.json and history.svg (losses and accuracies, no weights).
 *
 * Only `--tee simulation` runs here: the document is a simulation report signed with the
 * aggregator's identity key, and every line, the history file and the plot say
 * "simulation: no hardware isolation". The hardware kinds are refused with
 * CIPHERML_E_TEE_UNAVAILABLE (docs/enclave.md gives the path to real hardware).
 */

/** TEE kinds `server --tee` accepts. */
export const TEE_KINDS: readonly ['simulation', 'sgx', 'tdx', 'sev-snp', 'nitro'] = ['simulation', 'sgx', 'tdx', 'sev-snp', 'nitro'];
export type TeeKind = (typeof TEE_KINDS)[number];

/** The HTTP/2 path (beside the gRPC service, on the same TLS port) that serves the attestation. */
export const ATTESTATION_PATH = '/cipherml.enclave.v1/attestation';

/** The device each hardware kind needs (Linux guest/host drivers). */
const TEE_DEVICES: Readonly<Record<Exclude<TeeKind, 'simulation'>, readonly string[]>> = {
  sgx: ['/dev/sgx_enclave', '/dev/sgx/enclave'],
  tdx: ['/dev/tdx_guest', '/dev/tdx-guest'],
  'sev-snp': ['/dev/sev-guest'],
  nitro: ['/dev/nsm'],
};

/**
 * Refuses every hardware kind: with no device, because there is none; with a device, because
 * cipherml does not drive it itself but runs under a TEE runtime that does (docs/enclave.md).
 *
 * @example
 * ```ts
 * assertTeeAvailable('simulation'); // returns; 'sgx' throws CIPHERML_E_TEE_UNAVAILABLE here
 * ```
 */
export function assertTeeAvailable(kind: string): asserts kind is TeeKind {
  if (!(TEE_KINDS as readonly string[]).includes(kind)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--tee must be one of ${TEE_KINDS.join(', ')}, got ${JSON.stringify(kind)}`, { param: '--tee' });
  if (kind === 'simulation') return;
  const devices = TEE_DEVICES[kind as Exclude<TeeKind, 'simulation'>];
  const present = devices.filter((d) => existsSync(d));
  const why = present.length === 0
    ? `no ${kind} device is present on this machine (looked for ${devices.join(', ')})`
    : `${present.join(', ')} is present, but cipherml does not request ${kind} quotes itself: it runs inside a TEE runtime (Gramine-SGX, a confidential VM, a Nitro enclave) as docs/enclave.md describes`;
  throw new CipherMLError('CIPHERML_E_TEE_UNAVAILABLE', `--tee ${kind}: ${why}`, { param: '--tee', details: { kind, present } });
}

/** What `GET ATTESTATION_PATH` returns (JSON). */
export interface AttestationBundle {
  readonly kind: 'simulation';
  /** Base64 of the attestation document. */
  readonly document: string;
  /** Base64 of the serialized Paillier public key the document binds. */
  readonly paillierPublicKey: string;
  readonly runId: string;
  readonly isolation: string;
}

/** Options of {@link EnclaveAggregator.start}. */
export interface EnclaveAggregatorOptions {
  readonly tee: TeeKind;
  /** The server settings (address, rounds, min-fit, run-dir, …); `tls` is ignored: the enclave makes its own. */
  readonly settings: ServerSettings;
  /** Identity mode is required: the server identity (which also signs simulation reports) and the roster of workers. */
  readonly trust: PartyTrust;
  readonly packing: PackingSpec;
  readonly keyBits: number;
  /** `cipherml enclave measure` of what runs. */
  readonly measurement: string;
  /** Simulation: the local sealing secret (src/attest/seal.ts). */
  readonly sealingSecret: Uint8Array;
  /** Names in the TLS certificate (default: the listening host, 127.0.0.1 and localhost). */
  readonly hosts?: readonly string[];
  readonly onEvent?: (e: ServerEvent | EnclaveEvent) => void;
  /** Validation inside the enclave (e.g. on a held-out set): only metrics leave it. */
  readonly evaluate?: FlServerOptions['evaluate'];
  /** The initial global model (default: the first joining worker's parameters); a sealed checkpoint takes precedence. */
  readonly initialModel?: FlServerOptions['initialModel'];
  /** Tests: record what reaches the server. */
  readonly interceptors?: Interceptor[];
}

/** Events of the enclave around the federated ones. */
export type EnclaveEvent =
  | { readonly type: 'enclave'; readonly state: 'generated' | 'unsealed'; readonly runId: string; readonly paillierFingerprint: string; readonly tlsSpkiSha256: string; readonly measurement: string; readonly isolation: string };

interface SealedState {
  readonly version: 1;
  readonly runId: string;
  readonly paillierPrivateKey: string;
  readonly tlsKeyPem: string;
  readonly tlsCertPem: string;
  checkpoint: string | null;
}

/** A running HTTP/2 TLS server that serves FederatedService and the attestation path. */
export interface EnclaveListener {
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Serves `routes` (gRPC) and `attestation` (JSON at {@link ATTESTATION_PATH}) over TLS with an
 * in-memory key: the one place the aggregator's TLS key is used.
 *
 * @example
 * ```ts
 * const l = await serveEnclave({ address: '127.0.0.1:0', tls, routes: (r) => server.routes(r), attestation: bundle, maxMessageBytes: 64 << 20 });
 * ```
 */
export async function serveEnclave(o: { address: string; tls: EnclaveTls; routes: (r: ConnectRouter) => void; attestation: AttestationBundle; maxMessageBytes: number; interceptors?: Interceptor[] }): Promise<EnclaveListener> {
  const body = Buffer.from(JSON.stringify(o.attestation));
  const handler = connectNodeAdapter({
    routes: o.routes,
    readMaxBytes: o.maxMessageBytes,
    writeMaxBytes: o.maxMessageBytes,
    ...(o.interceptors === undefined ? {} : { interceptors: o.interceptors }),
    fallback: (req, res) => {
      if (req.url === ATTESTATION_PATH && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end();
      }
    },
  });
  const server = http2.createSecureServer({ key: o.tls.keyPem, cert: o.tls.certPem, allowHTTP1: true }, handler);
  const { address, close } = await listenHttp2(server, o.address);
  return { address, close };
}

/**
 * @example
 * ```ts
 * const agg = await EnclaveAggregator.start({ tee: 'simulation', settings, trust, packing, keyBits: 2048, measurement, sealingSecret });
 * const summary = await agg.run();
 * await agg.close();
 * ```
 */
export class EnclaveAggregator {
  readonly #server: FlServer;
  readonly #listener: EnclaveListener;
  readonly #bundle: AttestationBundle;
  readonly #publicKey: Uint8Array;
  readonly #tls: EnclaveTls;

  private constructor(server: FlServer, listener: EnclaveListener, bundle: AttestationBundle, publicKey: Uint8Array, tls: EnclaveTls) {
    this.#server = server;
    this.#listener = listener;
    this.#bundle = bundle;
    this.#publicKey = publicKey;
    this.#tls = tls;
  }

  /** Generates or unseals the enclave's secrets, publishes its attestation and starts serving. */
  static async start(o: EnclaveAggregatorOptions): Promise<EnclaveAggregator> {
    assertTeeAvailable(o.tee);
    const s = o.settings;
    await mkdir(s.runDir, { recursive: true });
    const sealedPath = join(s.runDir, 'enclave.sealed');
    const { host } = parseAddress(s.address);
    const emit = o.onEvent ?? (() => undefined);
    let state: SealedState;
    let privateKey: PaillierPrivateKey;
    let tls: EnclaveTls;
    let fresh: boolean;
    if (existsSync(sealedPath)) {
      const text = Buffer.from(unseal(readFileSync(sealedPath), o.measurement, o.sealingSecret)).toString('utf8');
      state = JSON.parse(text) as SealedState;
      if (state.version !== 1) throw new CipherMLError('CIPHERML_E_SEALED_DATA', `${sealedPath} has version ${String(state.version)}, this build reads 1`, { param: 'run-dir' });
      privateKey = deserializePrivateKey(Buffer.from(state.paillierPrivateKey, 'base64'));
      tls = enclaveTlsFromPem(state.tlsKeyPem, state.tlsCertPem);
      fresh = false;
    } else {
      privateKey = (await generatePaillierKeyPair({ bits: o.keyBits })).privateKey;
      tls = generateEnclaveTls([...new Set([host, '127.0.0.1', 'localhost', ...(o.hosts ?? [])])].filter((h) => h !== '0.0.0.0' && h !== '::'));
      state = { version: 1, runId: randomUUID(), paillierPrivateKey: Buffer.from(serializePrivateKey(privateKey)).toString('base64'), tlsKeyPem: tls.keyPem, tlsCertPem: tls.certPem, checkpoint: null };
      fresh = true;
    }
    const writeSealed = (): Promise<void> => writeFileSafely(sealedPath, seal(Buffer.from(JSON.stringify(state)), o.measurement, o.sealingSecret), { overwrite: true, mode: 0o600 });
    if (fresh) await writeSealed();
    const publicKey = serializePublicKey(privateKey.publicKey);
    const isolation = SIMULATION_LABEL;
    emit({ type: 'enclave', state: fresh ? 'generated' : 'unsealed', runId: state.runId, paillierFingerprint: privateKey.publicKey.fingerprint, tlsSpkiSha256: sha256hex(tls.spki), measurement: o.measurement, isolation });
    const strategy = new EnclaveFedAvg({ privateKey, packing: o.packing, roster: o.trust.roster, minFit: s.minFitClients, runId: state.runId, label: isolation });
    const { tls: _ignored, ...settings } = s;
    const server = new FlServer({
      settings: { ...settings, trust: o.trust },
      strategy,
      runId: state.runId,
      checkpointStore: {
        read: () => state.checkpoint,
        write: async (json) => {
          state.checkpoint = json;
          await writeSealed();
        },
      },
      ...(o.onEvent === undefined ? {} : { onEvent: o.onEvent }),
      ...(o.evaluate === undefined ? {} : { evaluate: o.evaluate }),
      ...(o.initialModel === undefined ? {} : { initialModel: o.initialModel }),
    });
    await server.prepare();
    const document = createSimulationReport(o.trust.identity, { measurement: o.measurement, reportData: reportDataBinding({ paillierPublicKey: publicKey, tlsPublicKey: tls.spki, runId: state.runId }) });
    const bundle: AttestationBundle = { kind: 'simulation', document: Buffer.from(document).toString('base64'), paillierPublicKey: Buffer.from(publicKey).toString('base64'), runId: state.runId, isolation };
    const listener = await serveEnclave({ address: s.address, tls, routes: (r) => server.routes(r), attestation: bundle, maxMessageBytes: s.maxMessageBytes, ...(o.interceptors === undefined ? {} : { interceptors: o.interceptors }) });
    emit({ type: 'listening', address: listener.address, strategy: strategy.name, keyHolder: strategy.keyHolder });
    return new EnclaveAggregator(server, listener, bundle, publicKey, tls);
  }

  get address(): string {
    return this.#listener.address;
  }

  get runId(): string {
    return this.#bundle.runId;
  }

  /** What the attestation path serves. */
  get attestation(): AttestationBundle {
    return this.#bundle;
  }

  /** The serialized Paillier public key and the TLS SubjectPublicKeyInfo the document binds. */
  get boundKeys(): { paillierPublicKey: Uint8Array; tlsPublicKey: Uint8Array } {
    return { paillierPublicKey: this.#publicKey, tlsPublicKey: this.#tls.spki };
  }

  run(): Promise<RunSummary> {
    return this.#server.run();
  }

  async close(graceMs = 0): Promise<void> {
    await this.#server.close(graceMs);
    await this.#listener.close();
  }
}

function sha256hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
