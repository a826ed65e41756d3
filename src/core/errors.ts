/**
 * The one error catalog of cipherml. Every error thrown across a public boundary is a
 * {@link CipherMLError} whose `code` is one of the stable strings below; codes are never renamed
 * or reused, so callers may branch on them and documentation may cite them.
 */

/**
 * Stable error codes with the default advice each message ends with. A throw site that knows the
 * case better passes `advice` (see {@link CipherMLErrorOptions}); the code stays the same.
 */
export const ERROR_CATALOG = {
  CIPHERML_E_INVALID_ARGUMENT: 'Check the value passed for the named parameter against its documentation.',
  CIPHERML_E_NOT_FINITE: 'Remove NaN and ±Infinity from the input (e.g. clip or impute) before encoding.',
  CIPHERML_E_OUT_OF_RANGE: 'Scale the input into the encodable range, or choose a layout with more integer bits.',
  CIPHERML_E_KEY_MISMATCH: 'Use the key whose fingerprint the data was made under (see `fingerprint` on keys and ciphertexts).',
  CIPHERML_E_CIPHERTEXT_INVALID: 'The ciphertext is not an element of Z*_{n^2} for this key: it was corrupted or made under another key.',
  CIPHERML_E_SHAPE_MISMATCH: 'Both operands must have the same length and packing layout.',
  CIPHERML_E_LAYOUT_MISMATCH: 'Encrypt all contributions with the same packing layout (precision, integer bits, headroom).',
  CIPHERML_E_SLOT_OVERFLOW: 'Decrypt and re-encrypt the aggregate, or choose a layout with headroom for more contributions.',
  CIPHERML_E_FORMAT_TRUNCATED: 'The serialized data ended early: transfer or read the whole file again.',
  CIPHERML_E_FORMAT_CORRUPT: 'The serialized data failed its integrity check: it was modified or damaged; fetch a fresh copy.',
  CIPHERML_E_FORMAT_UNSUPPORTED: 'The data was written by an incompatible format version or is of another kind; upgrade cipherml or re-export it.',
  CIPHERML_E_FILE_EXISTS: 'Refusing to overwrite an existing file: choose another path or pass the overwrite option.',
  CIPHERML_E_KEY_FILE_INSECURE: 'Restrict the secret key file to its owner (chmod 600) and consider the key exposed if others could read it.',
  CIPHERML_E_IO: 'Check that the path exists and is readable/writable by this user.',
  CIPHERML_E_WORKER_FAILED: 'A worker thread failed; the error cause holds the worker error. Retry with `workers: 0` to run in-thread.',
  CIPHERML_E_CONFIG_INVALID: 'Fix the named key in the run config, command-line flag or environment variable (see `--help` for the keys and their ranges).',
  CIPHERML_E_PROTOCOL: 'Both sides must run compatible cipherml versions and follow the round protocol; restart the worker to rejoin.',
  CIPHERML_E_UNAUTHENTICATED: 'Servers and the key authority take the run secret (--token or CIPHERML_TOKEN); each worker takes only its own token, printed by `cipherml token --secret <secret> --id <its id>`.',
  CIPHERML_E_DUPLICATE_WORKER: 'Give every worker a distinct --id, or stop the worker already connected with this id.',
  CIPHERML_E_ROUND_CLOSED: 'The round this result belongs to has ended; the worker will receive the next round.',
  CIPHERML_E_ROUND_FAILED: 'Start more workers, lower min-fit-clients, or raise round-timeout.',
  CIPHERML_E_MODEL_MISMATCH: 'Every worker must train the same model shape (same feature count and parameter layout) as the server.',
  CIPHERML_E_MESSAGE_TOO_LARGE: 'Raise max-message-bytes on both sides, or send a smaller model.',
  CIPHERML_E_PEER_UNAVAILABLE: 'Check that the peer process is running and reachable at the given address; workers retry with backoff.',
  CIPHERML_E_FORBIDDEN: 'This party is not allowed this operation in the configured key-holder mode.',
  CIPHERML_E_DEPENDENCY_MISSING: 'Install the named optional/dev dependency (e.g. `npm install`) and retry.',
  // Encrypted training service and trusted gateway (src/service, src/gateway)
  CIPHERML_E_SERVICE_UNAUTHENTICATED: 'Send `Authorization: Bearer <token>` with a token made by `cipherml serve token create`.',
  CIPHERML_E_SERVICE_FORBIDDEN: 'This user may not do this: deploying and undeploying need the owner role, and a user reaches only their own keys, data, jobs and models.',
  CIPHERML_E_SERVICE_NOT_FOUND: 'Check the model name/version and the job id, register for the model, and upload the item before asking for it.',
  CIPHERML_E_SERVICE_CONFLICT: 'The resource is in a state that forbids this (registered users on undeploy, a job still running): resolve that first and retry.',
  CIPHERML_E_PAYLOAD_TOO_LARGE: 'Send a smaller body, or start the service with a larger --max-body-mb.',
  CIPHERML_E_CSV_INVALID: 'Fix the named line of the CSV: a header, then one row of finite numbers per line with as many cells as the header.',
  CIPHERML_E_STORAGE: 'Check the data folder (permissions, free space) or the PostgreSQL URL and that the database is reachable.',
  CIPHERML_E_JOB_FAILED: 'Read the job error, fix the uploaded input or the hyper-parameters, and submit fit again.',
  CIPHERML_E_CKKS_PARAMS_MISMATCH: 'Encrypt the data and model under the public context uploaded for this model (same CKKS parameters and keys).',
  // CKKS layer (src/ckks) and encrypted ONNX inference (src/inference)
  CIPHERML_E_CKKS_PARAMETERS_INSECURE: 'The coefficient modulus is too large for 128-bit security at this ring degree: raise the ring degree or use fewer/smaller primes (or let keyparams choose).',
  CIPHERML_E_CKKS_DEPTH_EXHAUSTED: 'The ciphertext has no multiplicative levels left: choose parameters with a longer modulus chain (more primes), e.g. rerun `cipherml he keyparams` with the model.',
  CIPHERML_E_CKKS_GALOIS_KEY_MISSING: 'Generate the keys with this rotation step among the Galois steps (the execution plan lists the steps it needs).',
  CIPHERML_E_CKKS_SCALE_MISMATCH: 'The operands were computed along paths with very different scales; rescale both to the same level before combining them.',
  CIPHERML_E_CKKS_SECRET_KEY_MISSING: 'This operation needs the secret key: load the secret key file (not the .pub evaluation keys).',
  CIPHERML_E_CKKS_CIPHERTEXT_INVALID: 'The ciphertext is not valid for these CKKS parameters: it was corrupted or made under another key or parameter set.',
  CIPHERML_E_SEAL_FAILURE: 'Microsoft SEAL (node-seal) rejected the operation; the error cause holds its message. Report it if the inputs were valid.',
  CIPHERML_E_ONNX_INVALID: 'The file is not an ONNX ModelProto this build can read: re-export the model (PyTorch opsets 9–14) and check the file is complete.',
  CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR: 'Replace the named operator with a supported one (see docs/inference.md) or remove it from the model before encrypted inference.',
  CIPHERML_E_INFERENCE_INPUT_SHAPE: 'Give an input whose shape matches the model input (optionally with a leading batch dimension).',
  CIPHERML_E_KEYPARAMS_TOO_SMALL: 'The keys or parameters cannot evaluate this model: rerun `cipherml he keyparams` and `cipherml he keygen` for this model.',
  // Identities and signatures (src/core/identity.ts)
  CIPHERML_E_SIGNATURE_INVALID: 'The message was not signed by the pinned key of the party it names: it was forged or altered, or that party uses another identity file than the one pinned here.',
  CIPHERML_E_IDENTITY_UNKNOWN: 'Add the party\'s public identity (its .pub file) to the roster or pinned fingerprints this party trusts, or check that the right identity file is in use.',

  // Trust: pinned keys, threshold Paillier, active secure aggregation (issue 12)

  // Threshold Paillier (src/paillier/threshold*)

  // Robustness: bounded parsing (issue 13)

  // Attestation (src/attest)

  // Federated deep learning (src/ml/nn, src/fl apps)

  // Package and CLI (issue 14)
  CIPHERML_E_NODE_VERSION: 'Run cipherml on Node.js 24 or newer (for example `npx node@24 …`, or the `node` devDependency of a checkout).',
  CIPHERML_E_INTERNAL: 'This is a bug in cipherml, not in your input: rerun with --debug and report the stack trace.',
  CIPHERML_E_ADDRESS_IN_USE: 'Another process listens on that address: stop it, or choose another port.',

} as const;

/** A stable cipherml error code, e.g. `"CIPHERML_E_SLOT_OVERFLOW"`. */
export type ErrorCode = keyof typeof ERROR_CATALOG;

/** Optional structured context carried by an error. */
export interface CipherMLErrorOptions {
  /** The public parameter (or field) whose value was rejected. */
  readonly param?: string;
  /** Machine-readable facts about the failure (expected/actual values, indices). */
  readonly details?: Readonly<Record<string, unknown>>;
  /** The underlying error, if any. */
  readonly cause?: unknown;
  /** Advice specific to this case, replacing the catalog's default sentence for the code. */
  readonly advice?: string;
}

/**
 * The error type of cipherml. `message` says what was wrong and ends with what to do.
 *
 * @example
 * ```ts
 * try { codec.encode(Number.NaN); }
 * catch (e) { if (e instanceof CipherMLError && e.code === 'CIPHERML_E_NOT_FINITE') console.log(e.param); }
 * ```
 */
export class CipherMLError extends Error {
  readonly code: ErrorCode;
  readonly param: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  /** What was wrong, without the code, parameter and advice (for nesting in another message). */
  readonly problem: string;
  /** What to do: the case-specific advice given at the throw site, or the catalog's default. */
  readonly advice: string;

  constructor(code: ErrorCode, problem: string, options: CipherMLErrorOptions = {}) {
    const where = options.param === undefined ? '' : `${options.param}: `;
    super(`${code}: ${where}${problem}. ${options.advice ?? ERROR_CATALOG[code]}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.problem = problem;
    this.advice = options.advice ?? ERROR_CATALOG[code];
    this.name = 'CipherMLError';
    this.code = code;
    this.param = options.param;
    this.details = options.details;
  }

  /**
   * Rebuilds an error that crossed a thread or process boundary as JSON, keeping its code,
   * parameter and exact message.
   */
  static revive(json: { code: string; message: string; param?: string | undefined; details?: Readonly<Record<string, unknown>> | undefined }): CipherMLError {
    const code: ErrorCode = json.code in ERROR_CATALOG ? (json.code as ErrorCode) : 'CIPHERML_E_WORKER_FAILED';
    const e = new CipherMLError(code, json.message, { ...(json.param === undefined ? {} : { param: json.param }), ...(json.details === undefined ? {} : { details: json.details }) });
    e.message = json.message;
    return e;
  }

  /** A JSON-friendly view, for `--json` output and REST responses. */
  toJSON(): { code: ErrorCode; message: string; param?: string; details?: Readonly<Record<string, unknown>> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.param === undefined ? {} : { param: this.param }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

/**
 * True when `e` is a cipherml error, optionally with the given code.
 *
 * @example
 * ```ts
 * if (isCipherMLError(e, 'CIPHERML_E_KEY_MISMATCH')) console.error('wrong key');
 * ```
 */
export function isCipherMLError(e: unknown, code?: ErrorCode): e is CipherMLError {
  return e instanceof CipherMLError && (code === undefined || e.code === code);
}
