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
  CIPHERML_E_ONNX_INVALID: 'The file is not an ONNX ModelProto this build can read: re-export the model (ONNX opsets 9–23) and check the file is complete; the named node’s attributes or inputs break the ONNX operator specification.',
  CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR: 'Replace the named operator with a supported one (see docs/inference.md) or remove it from the model before encrypted inference.',
  CIPHERML_E_INFERENCE_INPUT_SHAPE: 'Give an input whose shape matches the model input (optionally with a leading batch dimension).',
  CIPHERML_E_KEYPARAMS_TOO_SMALL: 'The keys or parameters cannot evaluate this model: rerun `cipherml he keyparams` and `cipherml he keygen` for this model.',
  CIPHERML_E_ONNX_SHAPE_MISMATCH: 'The model declares (value_info / graph output) another shape than this executor computes for the named node: re-export the model with shape inference, or report the node if the file is right.',
  CIPHERML_E_HE_HEAP_EXHAUSTED: "An inference thread's SEAL heap (a 32-bit WebAssembly memory, at most 4 GiB) is nearly full: rerun `cipherml he inference` with a lower --heap-mib (InferencePoolOptions.threadHeapMiB), e.g. half the value used. SEAL keeps freed ciphertext memory for reuse by ciphertexts of the same size only, so its heap grows past the budget as a run meets new sizes (2 to 3.8 times the budget measured on LeNet-5 with Relu); a model whose live values at many levels exceed that cannot run on this machine's batch plan yet.",
  CIPHERML_E_HE_RANGE_UNSAFE: 'The values of the named layer cannot be held by a CKKS modulus chain at 128-bit security: normalize the model input or the layer (e.g. BatchNormalization), lower --scale-bits, or calibrate on inputs of the range you will encrypt.',
  // Identities and signatures (src/core/identity.ts)
  CIPHERML_E_SIGNATURE_INVALID: 'The message was not signed by the pinned key of the party it names: it was forged or altered, or that party uses another identity file than the one pinned here.',
  CIPHERML_E_IDENTITY_UNKNOWN: 'Add the party\'s public identity (its .pub file) to the roster or pinned fingerprints this party trusts, or check that the right identity file is in use.',

  // Trust: pinned keys, threshold Paillier, active secure aggregation (issue 12)
  CIPHERML_E_SECAGG_PARAMETER_REFUSED: 'The server announced a security parameter weaker than this client accepts (threshold, SecAgg+ degree or graph seed): fix the named key in the server\'s run config, or check this client\'s secagg-corrupt-fraction / secagg-dropout-rate / secagg-statistical-security; a server that changes it on its own is attacking.',
  CIPHERML_E_SECAGG_ABORTED: 'The client stopped the secure-aggregation round instead of revealing a secret (too few survivors, or survivor sets or signatures that disagree): start more workers or lower dropouts; if it repeats with enough workers, the server is misbehaving.',
  CIPHERML_E_SECAGG_SUM_OUT_OF_RANGE: 'The unmasked sum is outside the range honest quantized inputs can reach: a client sent an out-of-range value or a wrong share; the round yields no model. Identify the client from the server log and exclude it.',
  CIPHERML_E_KEY_NOT_PINNED: 'The Paillier public key offered is not the pinned one (paillier-key-fingerprint) nor signed by the pinned key authority: do not encrypt under it; check who runs the server and the authority, or pin the right fingerprint.',
  CIPHERML_E_KEY_TOO_SMALL: 'Use a Paillier key of at least 2048 bits (key-bits); 1024-bit keys are for tests only.',
  CIPHERML_E_KEY_INVALID: 'The key is malformed (its DJN base h_s is not in the required subgroup): generate a new key pair with `cipherml paillier keygen`.',
  CIPHERML_E_CONTRIBUTION_FLOOR: 'The key authority decrypts only the product of at least min-contributions distinct, validly signed contributions of the current round from roster workers: start more workers or check the roster.',
  CIPHERML_E_REQUEST_STALE: 'A signed request was replayed or is outside the freshness window: check the clocks of both parties (within 5 minutes) and retry.',
  CIPHERML_E_INSECURE_TRANSPORT: 'Give TLS files (tls-cert/tls-key on the listening side, tls-ca or system roots on the connecting side), or pass --insecure-plaintext for a trusted network only.',
  CIPHERML_E_DOWNGRADE: 'The peer announced a weaker protection than this party was configured for (strategy or key-holder): refuse to continue; check the server configuration.',
  CIPHERML_E_AGGREGATE_OUT_OF_RANGE: 'A decrypted aggregate slot lies outside the range its contributions can produce: some worker sent an out-of-range (malicious or corrupted) update; the round was not applied.',

  // Threshold Paillier (src/paillier/threshold*)
  CIPHERML_E_THRESHOLD_SHARE_INVALID: 'A key holder sent a decryption share that fails its proof of correct decryption (or names no holder of this key): treat the named holder as faulty or malicious, and combine the shares of other holders.',
  CIPHERML_E_THRESHOLD_TOO_FEW_SHARES: 'Fewer valid decryption shares than the key\'s threshold: start more key holders (or wait for them), or check that they hold shares of this threshold key.',
  CIPHERML_E_THRESHOLD_AGGREGATE_REFUSED: 'A key holder decrypts only the product of at least min-fit distinct, signed contributions of the current round from roster workers; the request named in the message did not prove that.',

  // Robustness: bounded parsing (issue 13)
  CIPHERML_E_INPUT_TOO_LARGE: 'The input holds or declares more than the receiver accepts here (the limit follows from the keys, the model shape or the route): send what was asked for, or raise the named limit.',
  CIPHERML_E_JSON_INVALID: 'Send well-formed JSON within the documented size and nesting depth that matches the schema of the route (see /api/v1/openapi.json).',
  CIPHERML_E_SERVICE_BUSY: 'This user already has the maximum number of heavy requests in progress: wait for them to finish, then retry (see the Retry-After header).',
  CIPHERML_E_URI_TOO_LONG: 'Shorten the request URL (model names and versions are at most 64 characters).',
  CIPHERML_E_HEADERS_TOO_LARGE: 'Send smaller request headers (a bearer token is 43 characters).',

  // Attestation (src/attest)
  CIPHERML_E_ATTESTATION_MALFORMED: 'The attestation document does not parse as the named kind (a length, marker or field is wrong): check --kind and that the file is the complete, unmodified document.',
  CIPHERML_E_ATTESTATION_SIGNATURE: 'A signature inside the attestation document does not verify: the document was altered or forged; fetch a fresh one from the enclave.',
  CIPHERML_E_ATTESTATION_CHAIN: 'The certificate chain does not lead to a pinned vendor root (Intel, AMD, AWS): the document was not issued by genuine hardware, or a certificate in it was altered.',
  CIPHERML_E_ATTESTATION_EXPIRED: 'A certificate or collateral item is not valid at the verification time: fetch fresh collateral, or pass --at with the time the document was produced (for an audit, not for a live decision).',
  CIPHERML_E_ATTESTATION_REVOKED: 'A certificate in the chain is on the vendor\'s revocation list: the platform key is no longer trusted; do not send data to this enclave.',
  CIPHERML_E_ATTESTATION_COLLATERAL: 'The vendor collateral (TCB info, QE identity, CRLs) is missing, not signed by the vendor, or does not belong to this platform: fetch it for this document\'s FMSPC from the vendor service.',
  CIPHERML_E_ATTESTATION_TCB: 'The platform\'s TCB (microcode, firmware, security versions) is below what the policy accepts: update the platform, or list the status in accepted-tcb-statuses if you accept the named advisories.',
  CIPHERML_E_ATTESTATION_POLICY: 'The attested code or configuration is not what the policy expects (measurement, signer, PCR, product): check that the enclave runs the build the policy names, or update the policy.',
  CIPHERML_E_ATTESTATION_DEBUG: 'The enclave runs in debug mode, where the host can read its memory: start it in production mode, or set allow-debug = true only for development.',
  CIPHERML_E_ATTESTATION_REPORT_DATA: 'The report data does not bind the expected keys: the document was made for other keys or another run; refuse to send and fetch the document from the aggregator you are connected to.',
  CIPHERML_E_ATTESTATION_SIMULATION: 'This is a simulation report (no hardware isolation): accept it only for development, with allow-simulation = true and the simulator key pinned in the policy.',
  CIPHERML_E_TEE_UNAVAILABLE: 'This process cannot obtain a hardware attestation here: no SGX, TDX, SEV-SNP or Nitro device is present, and cipherml does not fake one. Run with --tee simulation (labelled: no hardware isolation) for development, or follow docs/enclave.md ("The path to real hardware") on a TEE machine.',
  CIPHERML_E_SEALED_DATA: 'The sealed data cannot be opened under this measurement and sealing secret: it was sealed by another build or with another secret, or it was altered.',

  // Federated deep learning (src/ml/nn, src/fl apps)
  CIPHERML_E_NN_ENGINE: 'The TensorFlow.js engine failed to load or lacks a kernel: reinstall dependencies (`npm install`), or pass --engine cpu to use the pure-JavaScript backend.',
  CIPHERML_E_DATASET_INVALID: 'Give the IDX files of MNIST or Fashion-MNIST as distributed (gzip or raw): images with magic 2051 and 28×28 items, labels with magic 2049, the same count in both.',
  CIPHERML_E_PARTITION_INVALID: 'Choose a partition every client can get data from: iid, shards:K with K ≥ 1 and clients·K ≤ samples, or dirichlet:α with α > 0 (larger α is closer to IID); fewer clients also help.',
  CIPHERML_E_DEMO_PARTY_FAILED: 'A process of the demo exited with an error before the run finished: its own output above says why (for example a wrong --data-dir or a refused key); fix that and rerun.',
  CIPHERML_E_ONNX_EXPORT_UNSUPPORTED: 'The exporter knows Conv (stride 1), MaxPool, AveragePool, Relu, square, Flatten and Dense layers: use those, or export the model with another tool.',

  // Package and CLI (issue 14)
  CIPHERML_E_NODE_VERSION: 'Run cipherml on Node.js 24 or newer (for example `npx node@24 …`, or the `node` devDependency of a checkout).',
  CIPHERML_E_INTERNAL: 'This is a bug in cipherml, not in your input: rerun with --debug and report the stack trace.',
  CIPHERML_E_ADDRESS_IN_USE: 'Another process listens on that address: stop it, or choose another port.',
  // Signed updates on arrival (issue 12)
  CIPHERML_E_UPDATE_UNSIGNED: 'In identity mode every worker update must be a contribution signed with that worker\'s identity: start the worker with its identity file and the run\'s roster (the server refuses anything else on arrival).',

  // Job lifecycle and the trusted gateway (issue 17)
  CIPHERML_E_JOB_CANCELLED: 'The job was cancelled by its user; start a new fit when ready (`cipherml gateway fit`).',
  CIPHERML_E_REFRESH_TIMEOUT: 'The gateway did not answer the job\'s refresh request in time: keep `cipherml gateway fit` running until the job ends (rerun it to resume an open job), or start the service with a longer --refresh-timeout.',
  CIPHERML_E_JOB_ACTIVE: 'A job of this user and model is still open and uses the stored inputs: wait for it, resume it with `cipherml gateway fit` (same --key-dir), or cancel it with `cipherml gateway cancel`.',
  CIPHERML_E_GATEWAY_UNAUTHENTICATED: 'Send `Authorization: Bearer <local token>` with the token `cipherml gateway serve` printed (or the one in its --local-token-env variable).',
  CIPHERML_E_GATEWAY_HOST_REFUSED: 'The gateway answers only requests addressed to itself on loopback (Host 127.0.0.1:PORT, localhost:PORT or [::1]:PORT); a page on another site cannot reach it through DNS rebinding.',
  CIPHERML_E_SECRET_BOX_OUTDATED: 'The sealed secret key was made by an older format (scrypt N = 2^15, nothing bound): seal it again from the machine that holds the key (`cipherml gateway fit --passphrase-env VAR`).',
  CIPHERML_E_SECRET_BOX_BINDING: 'The sealed secret key belongs to another user, model or key set than the one asked for: fetch the box of this user and model, or use the gateway that made it.',

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
