import { createClient, type ConnectRouter, type Transport } from '@connectrpc/connect';
import { CipherMLError } from '../core/errors.ts';
import { decryptVector, deserializePacked, deserializePublicKey, serializePrivateKey, serializePublicKey, type PaillierKeyPair } from '../paillier/index.ts';
import { KeyAuthorityService } from './gen/cipherml/fl/v1/fl_pb.ts';
import { PROTOCOL_VERSION, checkProtocolVersion, checkToken, deriveToken, f64ToLe, fromRpcError, leToF64, toConnectError } from './protocol.ts';
import type { PaillierKeyHolder } from './strategy.ts';

/**
 * The key authority (model owner) of Flower's FedAvgHE setup: it generates and keeps the Paillier
 * key pair; the aggregating server gets only the public key.
 *
 * - key-holder "authority": only the authority holds the secret key; it decrypts aggregates for
 *   the server (party id "server") and refuses a vector holding fewer than `minContributions`
 *   contributions, so an honest-but-curious server cannot have one worker's update decrypted.
 *   The contribution count is a header field the server could forge: against a malicious server
 *   use secure aggregation, not this check.
 * - key-holder "clients": workers (any party id other than "server") fetch the key pair and
 *   decrypt the encrypted aggregate themselves; the authority never decrypts.
 */

/** Options of {@link KeyAuthority}. */
export interface KeyAuthorityOptions {
  readonly keyPair: PaillierKeyPair;
  readonly keyHolder: 'authority' | 'clients';
  /** Run secret for token checks (empty: none). */
  readonly secret: string;
  /** Smallest contribution count the authority decrypts. */
  readonly minContributions: number;
  readonly onEvent?: (e: { type: 'public-key' | 'key-pair' | 'decrypt' | 'refused'; party: string; detail: string }) => void;
}

/**
 * @example
 * ```ts
 * const authority = new KeyAuthority({ keyPair, keyHolder: 'authority', secret, minContributions: 2 });
 * await startRpcServer({ address: '0.0.0.0:9092', routes: (r) => authority.routes(r), maxMessageBytes: 64 << 20 });
 * ```
 */
export class KeyAuthority {
  readonly #o: KeyAuthorityOptions;
  readonly #publicKey: Uint8Array;

  constructor(options: KeyAuthorityOptions) {
    this.#o = options;
    this.#publicKey = serializePublicKey(options.keyPair.publicKey);
  }

  /** Routes of the KeyAuthorityService. */
  routes(router: ConnectRouter): void {
    const emit = this.#o.onEvent ?? (() => undefined);
    const guard = async <T>(party: string, f: () => Promise<T> | T): Promise<T> => {
      try {
        return await f();
      } catch (e) {
        if (e instanceof CipherMLError) emit({ type: 'refused', party, detail: e.message });
        throw toConnectError(e);
      }
    };
    router.service(KeyAuthorityService, {
      getPublicKey: (req) =>
        guard(req.partyId, () => {
          checkProtocolVersion(req.protocolVersion);
          checkToken(this.#o.secret, req.partyId, req.token);
          emit({ type: 'public-key', party: req.partyId, detail: this.#o.keyPair.publicKey.fingerprint });
          return { publicKey: this.#publicKey, keyHolder: this.#o.keyHolder };
        }),
      getKeyPair: (req) =>
        guard(req.workerId, () => {
          checkProtocolVersion(req.protocolVersion);
          if (this.#o.keyHolder !== 'clients') throw new CipherMLError('CIPHERML_E_FORBIDDEN', 'the secret key never leaves this authority (key-holder "authority")', { param: 'workerId' });
          if (req.workerId === 'server') throw new CipherMLError('CIPHERML_E_FORBIDDEN', 'the aggregating server may not hold the secret key', { param: 'workerId' });
          checkToken(this.#o.secret, req.workerId, req.token);
          emit({ type: 'key-pair', party: req.workerId, detail: 'secret key handed to a worker' });
          return { publicKey: this.#publicKey, privateKey: serializePrivateKey(this.#o.keyPair.privateKey) };
        }),
      decryptAggregate: (req) =>
        guard(req.partyId, async () => {
          checkProtocolVersion(req.protocolVersion);
          if (this.#o.keyHolder !== 'authority') throw new CipherMLError('CIPHERML_E_FORBIDDEN', 'with key-holder "clients" the workers decrypt, not the authority', { param: 'partyId' });
          if (req.partyId !== 'server') throw new CipherMLError('CIPHERML_E_FORBIDDEN', 'only the aggregating server may request decryption', { param: 'partyId' });
          checkToken(this.#o.secret, req.partyId, req.token);
          const packed = deserializePacked(this.#o.keyPair.publicKey, req.packed);
          if (packed.contributions < this.#o.minContributions) {
            throw new CipherMLError('CIPHERML_E_FORBIDDEN', `refusing to decrypt a vector of ${packed.contributions} contribution(s); at least ${this.#o.minContributions} are required`, { param: 'packed' });
          }
          const sums = await decryptVector(this.#o.keyPair.privateKey, packed);
          emit({ type: 'decrypt', party: req.partyId, detail: `round ${req.round}: ${packed.length} values, ${packed.contributions} contributions` });
          return { values: f64ToLe(sums), contributions: packed.contributions };
        }),
    });
  }
}

/**
 * The server's side of the authority: fetches the public key and, for key-holder "authority",
 * asks the authority to decrypt each round's aggregate. The server never receives the secret key.
 *
 * @example
 * ```ts
 * const holder = await authorityKeyHolder(createRpcTransport({ address: 'authority:9092', maxMessageBytes }), secret, 'authority');
 * const strategy = new PaillierFedAvg(holder, packing);
 * ```
 */
export async function authorityKeyHolder(transport: Transport, secret: string, keyHolder: 'authority' | 'clients'): Promise<PaillierKeyHolder> {
  const client = createClient(KeyAuthorityService, transport);
  const token = secret === '' ? '' : deriveToken(secret, 'server');
  const reply = await client.getPublicKey({ protocolVersion: PROTOCOL_VERSION, token, partyId: 'server' }).catch((e: unknown) => {
    throw fromRpcError(e, 'key authority');
  });
  if (reply.keyHolder !== keyHolder) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `the key authority runs key-holder "${reply.keyHolder}", the server was started with "${keyHolder}"`, { param: 'key-holder' });
  }
  const publicKey = deserializePublicKey(reply.publicKey);
  if (keyHolder === 'clients') return { kind: 'clients', publicKey };
  return {
    kind: 'authority',
    publicKey,
    decrypt: async (round, packed) => {
      const r = await client.decryptAggregate({ protocolVersion: PROTOCOL_VERSION, token, partyId: 'server', round, packed }).catch((e: unknown) => {
        throw fromRpcError(e, 'key authority');
      });
      return { sums: leToF64(r.values, 'values'), contributions: r.contributions };
    },
  };
}
