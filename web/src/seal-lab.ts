import SEAL from 'node-seal';
// node-seal's loader asks for `seal_throws.wasm` next to its module; the built asset has a
// hashed name, so the URL Vite gives it is passed explicitly.
import wasmUrl from '../../node_modules/node-seal/dist/seal_throws.wasm?url';

/**
 * CKKS in the browser, loaded on first use: node-seal's JS and its ~1.3 MB wasm are a separate
 * chunk, never part of the console's first load. Generates a key set with the parameters of the
 * service's encrypted training (src/ml/encrypted-lr.ts TRAIN_CKKS_PARAMETERS: N = 8192, moduli
 * 43+33·4+43 bits, scale 2^33), encrypts a test vector with the public key and decrypts it with
 * the secret key, all in this page. The keys are SEAL's own serialization (base64), not yet the
 * service's envelope: uploading them is the next slice (docs/console.md).
 */

export const PARAMETERS = { polyModulusDegree: 8192, coeffModulusBits: [43, 33, 33, 33, 33, 43], scaleBits: 33 } as const;

export interface LabResult {
  readonly secretKey: string;
  readonly publicKey: string;
  readonly keygenMs: number;
  readonly encryptMs: number;
  readonly maxAbsError: number;
  readonly slots: number;
}

type Seal = Awaited<ReturnType<typeof SEAL>>;
let loading: Promise<Seal> | undefined;

function context(seal: Seal) {
  const parms = new seal.EncryptionParameters(seal.SchemeType.ckks);
  parms.setPolyModulusDegree(PARAMETERS.polyModulusDegree);
  parms.setCoeffModulus(seal.CoeffModulus.Create(PARAMETERS.polyModulusDegree, Int32Array.from(PARAMETERS.coeffModulusBits)));
  return new seal.SEALContext(parms, true, seal.SecLevelType.tc128);
}

/** Encrypts `values` under `pk`, decrypts under `sk`; the largest absolute error. */
function roundTrip(seal: Seal, ctx: ReturnType<typeof context>, pk: InstanceType<Seal['PublicKey']>, sk: InstanceType<Seal['SecretKey']>, values: Float64Array): number {
  const encoder = new seal.CKKSEncoder(ctx);
  const pt = new seal.Plaintext();
  encoder.encode(values, 2 ** PARAMETERS.scaleBits, pt);
  const ct = new seal.Ciphertext();
  new seal.Encryptor(ctx, pk).encrypt(pt, ct);
  const out = new seal.Plaintext();
  new seal.Decryptor(ctx, sk).decrypt(ct, out);
  const decoded = encoder.decodeFloat64(out) as Float64Array;
  let err = 0;
  for (let i = 0; i < values.length; i++) err = Math.max(err, Math.abs(decoded[i]! - values[i]!));
  for (const o of [encoder, pt, ct, out]) o.delete();
  return err;
}

/** Generates keys and checks them on a test vector; the secret key is returned to the caller (to be sealed), never sent anywhere. */
export async function generateAndCheck(): Promise<LabResult> {
  const seal = await (loading ??= SEAL({ locateFile: () => wasmUrl }));
  const t0 = performance.now();
  const ctx = context(seal);
  const keygen = new seal.KeyGenerator(ctx);
  const sk = keygen.secretKey();
  const pk = keygen.createPublicKey();
  const t1 = performance.now();
  const slots = PARAMETERS.polyModulusDegree / 2;
  const values = Float64Array.from({ length: slots }, (_, i) => ((i % 64) - 32) / 16);
  const maxAbsError = roundTrip(seal, ctx, pk, sk, values);
  const t2 = performance.now();
  const out = { secretKey: sk.saveToBase64(seal.ComprModeType.none), publicKey: pk.saveToBase64(seal.ComprModeType.none), keygenMs: t1 - t0, encryptMs: t2 - t1, maxAbsError, slots };
  for (const o of [sk, pk, keygen, ctx]) o.delete();
  return out;
}

/** Loads a stored key pair and checks that the secret key decrypts what the public key encrypts. */
export async function checkKeyPair(secretKey: string, publicKey: string): Promise<number> {
  const seal = await (loading ??= SEAL({ locateFile: () => wasmUrl }));
  const ctx = context(seal);
  const sk = new seal.SecretKey();
  sk.loadFromBase64(ctx, secretKey);
  const pk = new seal.PublicKey();
  pk.loadFromBase64(ctx, publicKey);
  const err = roundTrip(seal, ctx, pk, sk, Float64Array.from({ length: PARAMETERS.polyModulusDegree / 2 }, (_, i) => Math.sin(i)));
  for (const o of [sk, pk, ctx]) o.delete();
  return err;
}
