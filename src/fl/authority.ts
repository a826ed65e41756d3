import { createClient, type ConnectRouter, type Transport } from '@connectrpc/connect';
import { defences } from '../core/defences.ts';
import { CipherMLError } from '../core/errors.ts';
import { signMessage } from '../core/identity.ts';
import { decryptVector, deserializePacked, deserializePublicKey, serializePrivateKey, serializePublicKey, type PackedCiphertext, type PaillierKeyPair } from '../paillier/index.ts';
import { KeyAuthorityService, type DecryptAggregateRequest } from './gen/cipherml/fl/v1/fl_pb.ts';
import { contributionKeyId, verifyContributionSet } from './contribution.ts';
import { ReplayGuard, SIG_CONTEXT, keyStatement, signRequest, soleParty, verifyRequest, type PartyTrust } from './identity-auth.ts';
import { acceptPaillierKey } from './key-pinning.ts';
import { PROTOCOL_VERSION, checkProtocolVersion, checkToken, deriveToken, f64ToLe, fromRpcError, leToF64, toConnectError } from './protocol.ts';
import type { PaillierKeyHolder } from './strategy.ts';

/**
 * The key authority (model owner) of Flower's FedAvgHE setup: it generates and keeps the Paillier
 * key pair; the aggregating server gets only the public key.
 *
 * Identity mode (`trust` given; docs/fl.md has the threat table):
 * - it signs the key statement (key holder ‖ public key) with its identity, so workers accept the
 *   key only from it, whoever relays it;
 * - key-holder "clients": it hands the key pair only to a roster worker whose signed, fresh,
 *   single-use request verifies — never to the server (it holds no worker's signing key) nor to an
 *   anonymous caller;
 * - key-holder "authority": it decrypts only a product it computes itself from at least
 *   `minContributions` distinct contributions of the round, each signed by a roster worker over
 *   (round, worker id, SHA-256 of its bytes), and decrypts at most once per round, so a server
 *   cannot pad one worker's update with its own Enc(0) or re-decrypt subsets of a round.
 *   It sees each contribution's ciphertext under its own key: it is trusted not to decrypt them
 *   one by one (threshold decryption removes that trust).
 *
 * Insecure development mode (`trust` null): run-secret tokens, and the contribution count is a
 * header field the server could forge. A start warning says so.
 */

/** Options of {@link KeyAuthority}. */
export interface KeyAuthorityOptions {
  readonly keyPair: PaillierKeyPair;
  readonly keyHolder: 'authority' | 'clients';
  /** Development-mode run secret for token checks (empty: none). */
  readonly secret: string;
  /** Smallest contribution count the authority decrypts. */
  readonly minContributions: number;
  /** Identity mode: this authority's identity and the roster of server and workers. */
  readonly trust?: PartyTrust | null;
  readonly onEvent?: (e: { type: 'public-key' | 'key-pair' | 'decrypt' | 'refused'; party: string; detail: string }) => void;
}

/**
 * @example
 * ```ts
 * const authority = new KeyAuthority({ keyPair, keyHolder: 'authority', secret: '', minContributions: 2, trust });
 * await startRpcServer({ address: '127.0.0.1:9092', routes: (r) => authority.routes(r), maxMessageBytes: 64 << 20 });
 * ```
 */
export class KeyAuthority {
  readonly #o: KeyAuthorityOptions;
  readonly #publicKey: Uint8Array;
  readonly #keySignature: Uint8Array;
  readonly #guard = new ReplayGuard();
  #lastDecryptedRound = 0;
  /** The run of the first decrypted round (contributions of any other run are refused). */
  #runId: string | null = null;
  readonly #keyId: string;

  constructor(options: KeyAuthorityOptions) {
    if (!Number.isInteger(options.minContributions) || options.minContributions < 1) {
      throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `min-contributions must be an integer ≥ 1, got ${options.minContributions}`, { param: 'min-contributions' });
    }
    this.#o = options;
    this.#publicKey = serializePublicKey(options.keyPair.publicKey);
    this.#keyId = contributionKeyId(options.keyPair.publicKey);
    const t = options.trust ?? null;
    this.#keySignature = t === null ? new Uint8Array(0) : signMessage(t.identity, SIG_CONTEXT.keyStatement, keyStatement(options.keyHolder, this.#publicKey));
  }

  /** Routes of the KeyAuthorityService. */
  routes(router: ConnectRouter): void {
    const emit = this.#o.onEvent ?? (() => undefined);
    const trust = this.#o.trust ?? null;
    const signerId = trust?.identity.id ?? '';
    const guard = async <T>(party: string, f: () => Promise<T> | T): Promise<T> => {
      try {
        return await f();
      } catch (e) {
        if (e instanceof CipherMLError) emit({ type: 'refused', party, detail: `${e.code}: ${e.message}` });
        throw toConnectError(e);
      }
    };
    router.service(KeyAuthorityService, {
      getPublicKey: (req) =>
        guard(req.partyId, () => {
          checkProtocolVersion(req.protocolVersion);
          // The public key is public; its integrity comes from the signature, not from the caller.
          if (trust === null) checkToken(this.#o.secret, req.partyId, req.token);
          emit({ type: 'public-key', party: req.partyId, detail: this.#o.keyPair.publicKey.fingerprint });
          return { publicKey: this.#publicKey, keyHolder: this.#o.keyHolder, keySignature: this.#keySignature, keySignerId: signerId };
        }),
      getKeyPair: (req) =>
        guard(req.workerId, () => {
          checkProtocolVersion(req.protocolVersion);
          if (this.#o.keyHolder !== 'clients') throw new CipherMLError('CIPHERML_E_FORBIDDEN', 'the secret key never leaves this authority (key-holder "authority")', { param: 'workerId' });
          if (req.workerId === 'server') throw new CipherMLError('CIPHERML_E_FORBIDDEN', 'the aggregating server may not hold the secret key', { param: 'workerId' });
          if (trust !== null && defences.keyRequestSignatures) {
            verifyRequest(trust, this.#guard, 'worker', req.workerId, SIG_CONTEXT.authorityRequest, ['getKeyPair', req.workerId], req, `key-pair request of worker ${JSON.stringify(req.workerId)}`);
          } else {
            // Development mode refuses everyone without a token; the broken build of the adversarial suite (trust given, signatures off) is the old token check.
            if (this.#o.secret === '' && trust === null) throw new CipherMLError('CIPHERML_E_UNAUTHENTICATED', 'this authority has neither identities nor a token: it hands the secret key to nobody', { param: 'token' });
            checkToken(this.#o.secret, req.workerId, req.token);
          }
          emit({ type: 'key-pair', party: req.workerId, detail: 'secret key handed to a worker' });
          return { publicKey: this.#publicKey, privateKey: serializePrivateKey(this.#o.keyPair.privateKey), keySignature: this.#keySignature, keySignerId: signerId };
        }),
      decryptAggregate: (req) =>
        guard(req.partyId, async () => {
          checkProtocolVersion(req.protocolVersion);
          if (this.#o.keyHolder !== 'authority') throw new CipherMLError('CIPHERML_E_FORBIDDEN', 'with key-holder "clients" the workers decrypt, not the authority', { param: 'partyId' });
          if (req.partyId !== 'server') throw new CipherMLError('CIPHERML_E_FORBIDDEN', 'only the aggregating server may request decryption', { param: 'partyId' });
          const packed = trust !== null && defences.contributionFloor ? this.#signedProduct(trust, req) : this.#headerCounted(req);
          const sums = await decryptVector(this.#o.keyPair.privateKey, packed);
          emit({ type: 'decrypt', party: req.partyId, detail: `round ${req.round}: ${packed.length} values, ${packed.contributions} contributions` });
          return { values: f64ToLe(sums), contributions: packed.contributions };
        }),
    });
  }

  /** Development mode (and the broken build of the adversarial suite): trusts the header count. */
  #headerCounted(req: DecryptAggregateRequest): PackedCiphertext {
    if ((this.#o.trust ?? null) === null) checkToken(this.#o.secret, req.partyId, req.token);
    const packed = deserializePacked(this.#o.keyPair.publicKey, req.packed);
    if (packed.contributions < this.#o.minContributions) {
      throw new CipherMLError('CIPHERML_E_CONTRIBUTION_FLOOR', `refusing to decrypt a vector of ${packed.contributions} contribution(s); at least ${this.#o.minContributions} are required`, { param: 'packed' });
    }
    return packed;
  }

  /**
   * The contribution floor: the product of ≥ min-contributions distinct signed contributions of
   * this round, checked by verifyContributionSet (src/fl/contribution.ts, the threshold key
   * holders' check too), for the run of the first decryption; each round decrypted once.
   */
  #signedProduct(trust: PartyTrust, req: DecryptAggregateRequest): PackedCiphertext {
    const server = soleParty(trust.roster, 'server', 'roster');
    verifyRequest(trust, this.#guard, 'server', server.id, SIG_CONTEXT.authorityRequest, ['decryptAggregate', String(req.round)], req, `decryption request for round ${req.round}`);
    if (req.round <= this.#lastDecryptedRound) {
      throw new CipherMLError('CIPHERML_E_CONTRIBUTION_FLOOR', `round ${req.round} is not after the last decrypted round ${this.#lastDecryptedRound}: each round is decrypted once`, { param: 'round', details: { round: req.round } });
    }
    const pk = this.#o.keyPair.publicKey;
    const { runId, product } = verifyContributionSet(
      req.contributions.map((c) => c.contribution),
      { roster: trust.roster, runId: this.#runId, round: req.round, publicKey: pk, keyId: this.#keyId, minContributions: this.#o.minContributions, code: 'CIPHERML_E_CONTRIBUTION_FLOOR' },
    );
    this.#runId = runId;
    this.#lastDecryptedRound = req.round;
    return product;
  }
}

/** Options of {@link authorityKeyHolder}. */
export interface AuthorityKeyHolderOptions {
  readonly keyHolder: 'authority' | 'clients';
  /** Development-mode run secret (empty: none). */
  readonly secret: string;
  /** Identity mode: the server's identity and roster (with the authority). */
  readonly trust?: PartyTrust | null;
  /** Smallest modulus accepted from the authority (identity mode); default 2048. */
  readonly minKeyBits?: number;
}

/**
 * The server's side of the authority: fetches the public key (verified against the pinned
 * authority identity in identity mode) and, for key-holder "authority", asks the authority to
 * decrypt each round's aggregate, presenting the signed contributions. The server never receives
 * the secret key.
 *
 * @example
 * ```ts
 * const holder = await authorityKeyHolder(createRpcTransport({ address: 'authority:9092', maxMessageBytes }), { keyHolder: 'authority', secret: '', trust });
 * const strategy = new PaillierFedAvg(holder, packing);
 * ```
 */
export async function authorityKeyHolder(transport: Transport, options: AuthorityKeyHolderOptions): Promise<PaillierKeyHolder> {
  const { keyHolder, secret } = options;
  const trust = options.trust ?? null;
  const client = createClient(KeyAuthorityService, transport);
  const token = secret === '' ? '' : deriveToken(secret, 'server');
  const reply = await client.getPublicKey({ protocolVersion: PROTOCOL_VERSION, token, partyId: 'server' }).catch((e: unknown) => {
    throw fromRpcError(e, 'key authority');
  });
  if (reply.keyHolder !== keyHolder) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `the key authority runs key-holder "${reply.keyHolder}", the server was started with "${keyHolder}"`, { param: 'key-holder' });
  }
  const publicKey = trust === null ? deserializePublicKey(reply.publicKey) : acceptPaillierKey(reply, { pinnedFingerprint: '', roster: trust.roster, ...(options.minKeyBits === undefined ? {} : { minKeyBits: options.minKeyBits }) }, 'key authority');
  const vouch = { keySignature: reply.keySignature, keySignerId: reply.keySignerId };
  if (keyHolder === 'clients') return { kind: 'clients', publicKey, vouch };
  const authority = trust === null ? null : soleParty(trust.roster, 'authority', 'roster');
  return {
    kind: 'authority',
    publicKey,
    vouch,
    ...(trust === null ? {} : { roster: trust.roster }),
    decrypt: async (round, packed, contributions = []) => {
      const sig = trust === null || authority === null ? {} : signRequest(trust.identity, SIG_CONTEXT.authorityRequest, ['decryptAggregate', String(round)], authority.fingerprint);
      const r = await client.decryptAggregate({ protocolVersion: PROTOCOL_VERSION, token, partyId: 'server', round, packed, contributions: [...contributions], ...sig }).catch((e: unknown) => {
        throw fromRpcError(e, 'key authority');
      });
      return { sums: leToF64(r.values, 'values'), contributions: r.contributions };
    },
  };
}
