import { isIP, isIPv6 } from 'node:net';
import { CipherMLError } from '../core/errors.ts';
import { describe } from '../core/guards.ts';
import { readFileBounded } from '../core/bounded-file.ts';
import { DEFAULT_TOML_LIMITS, parseTomlBounded } from '../core/bounded-toml.ts';
import { THRESHOLD_CONFIG_ROWS, checkThresholdConfig } from './threshold-config.ts';

/**
 * The run configuration of the federated-learning runtime, in Flower's style: a TOML file with
 * kebab-case keys (`num-server-rounds = 30`), overridable by `CIPHERML_*` environment variables
 * and by command-line flags. Precedence, lowest first: defaults < file < environment < flags.
 *
 * One table, {@link RUN_CONFIG_SCHEMA}, drives everything: parsing, range checks, defaults,
 * `--help` text and the printed view. Every rejected input is a `CIPHERML_E_CONFIG_INVALID`
 * error whose `param` names what the user wrote: the TOML key, the environment variable or the
 * `--flag`.
 */

/** Aggregation strategies available in this version ("enclave" is reserved). */
export type Strategy = 'plain' | 'paillier' | 'secagg';

/** Secure-aggregation protocol (MindSpore encrypt_type, Flower SecAgg+); "off" unless strategy is "secagg". */
export type SecureAggregation = 'off' | 'pw' | 'stable-pw' | 'secagg+';

/** Whether the secure-aggregation threshold must also resist a server colluding with clients. */
export type CollusionModel = 'no-collusion' | 'server-clients';

/** Who holds the Paillier secret key. */
export type KeyHolder = 'server' | 'authority' | 'clients' | 'threshold';

/** Paillier modulus sizes accepted (1024 is for tests only). */
export type KeyBits = 1024 | 2048 | 3072 | 4096;

/**
 * A complete, validated run configuration. Each field is the camelCase form of a kebab-case key
 * of {@link RUN_CONFIG_SCHEMA} (`numServerRounds` ↔ `num-server-rounds`); see the schema for
 * ranges and meaning. String fields that are "unset" hold `""`.
 *
 * @example
 * ```ts
 * const config: RunConfig = resolveRunConfig({ flags: { numServerRounds: 5 } });
 * console.log(config.numServerRounds, config.strategy); // 5 'plain'
 * ```
 */
export interface RunConfig {
  readonly numServerRounds: number;
  readonly fractionFit: number;
  readonly fractionEvaluate: number;
  readonly minFitClients: number;
  readonly minEvaluateClients: number;
  readonly minAvailableClients: number;
  readonly localEpochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly l2: number;
  readonly strategy: Strategy;
  readonly keyHolder: KeyHolder;
  readonly keyBits: KeyBits;
  readonly packingFractionalBits: number;
  readonly packingIntegerBits: number;
  /** Most contributions one packed sum absorbs (slot headroom); 0: max(1000, min-available-clients). */
  readonly packingMaxContributions: number;
  /** Seconds. */
  readonly roundTimeout: number;
  /** Seconds. */
  readonly joinTimeout: number;
  readonly maxMessageBytes: number;
  readonly address: string;
  readonly authorityAddress: string;
  readonly runDir: string;
  readonly validateSet: string;
  readonly label: string;
  /** Shared secret; never printed (see {@link describeRunConfig}). */
  readonly token: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly tlsCa: string;
  /** This party's identity file (identity mode; with roster). */
  readonly identity: string;
  /** The roster of pinned public identities this party trusts. */
  readonly roster: string;
  /** Workers: the only Paillier key (fingerprint over n and h_s) they encrypt under ("": not pinned). */
  readonly paillierKeyFingerprint: string;
  readonly seed: number;
  readonly evalEvery: number;
  readonly secureAggregation: SecureAggregation;
  readonly clippingRange: number;
  readonly quantizationRange: number;
  /** 0: the smallest 2^k that the round's sum cannot wrap. */
  readonly modulusRange: number;
  /** 0: ⌊n/2⌋ + 1 for the n clients of the round. */
  readonly reconstructSecretsThreshold: number;
  readonly shareSecretsRatio: number;
  /** Milliseconds. */
  readonly cipherTimeWindow: number;
  /** 0: SecAgg+'s O(log n) neighbourhood. */
  readonly numShares: number;
  readonly collusionModel: CollusionModel;
  readonly thresholdViolation: 'refuse' | 'warn';
  // Key-holder "threshold" (src/fl/threshold-config.ts)
  readonly threshold: string;
  readonly thresholdPublicKey: string;
  readonly thresholdFingerprint: string;
  readonly thresholdHolders: string;
  readonly thresholdRoster: string;
  /** γ: tolerated fraction of corrupt clients (SecAgg+ degree and threshold, Bell et al. 2020). */
  readonly secaggCorruptFraction: number;
  /** δ: expected dropout rate per round. */
  readonly secaggDropoutRate: number;
  /** σ: statistical security in bits. */
  readonly secaggStatisticalSecurity: number;
}

/** A camelCase field of {@link RunConfig}. */
export type RunConfigField = keyof RunConfig;

/** `numServerRounds` → `num-server-rounds`, at the type level. */
type KebabCase<S extends string> = S extends `${infer H}${infer T}` ? `${H extends Lowercase<H> ? H : `-${Lowercase<H>}`}${KebabCase<T>}` : S;

/** A kebab-case run-config key, as written in TOML (`"num-server-rounds"`). */
export type RunConfigKey = KebabCase<RunConfigField>;

/** Where a value of a resolved config came from, lowest precedence first. */
export type RunConfigSource = 'default' | 'file' | 'env' | 'flags';

interface KeySpecBase<F extends RunConfigField> {
  /** The kebab-case key of TOML files and `--flags`. */
  readonly key: KebabCase<F>;
  /** The camelCase field of {@link RunConfig}. */
  readonly field: F;
  readonly default: RunConfig[F];
  /** One line for `--help`. */
  readonly description: string;
}

/** A key holding a safe integer in [min, max] (bounds inclusive, absent = unbounded). */
export interface IntKeySpec<F extends RunConfigField = RunConfigField> extends KeySpecBase<F> {
  readonly type: 'int';
  readonly min?: number;
  readonly max?: number;
}

/** A key holding a finite number; `minExclusive`/`maxExclusive` make a bound strict. */
export interface FloatKeySpec<F extends RunConfigField = RunConfigField> extends KeySpecBase<F> {
  readonly type: 'float';
  readonly min?: number;
  readonly max?: number;
  readonly minExclusive?: boolean;
  readonly maxExclusive?: boolean;
}

/** A key holding one of `values`; `reserved` values are named as "not available yet". */
export interface ChoiceKeySpec<F extends RunConfigField = RunConfigField> extends KeySpecBase<F> {
  readonly type: 'choice';
  readonly values: readonly RunConfig[F][];
  readonly reserved?: readonly string[];
}

/**
 * A key holding a string. `format: 'address'` requires `host:port` (when non-empty, or always
 * when `required`); `required` forbids `""`; `secret` values are never printed or echoed.
 */
export interface StringKeySpec<F extends RunConfigField = RunConfigField> extends KeySpecBase<F> {
  readonly type: 'string';
  readonly format?: 'address' | 'path';
  readonly required?: boolean;
  readonly secret?: boolean;
}

type SpecFor<F extends RunConfigField> = [RunConfig[F]] extends [string]
  ? string extends RunConfig[F]
    ? StringKeySpec<F>
    : ChoiceKeySpec<F>
  : number extends RunConfig[F]
    ? IntKeySpec<F> | FloatKeySpec<F>
    : ChoiceKeySpec<F>;

/** One row of {@link RUN_CONFIG_SCHEMA}. */
export type RunConfigKeySpec = { [F in RunConfigField]: SpecFor<F> }[RunConfigField];

/** The schema rows as literal types (for the completeness check below). */
const SCHEMA_ROWS = [
  { key: 'num-server-rounds', field: 'numServerRounds', type: 'int', default: 30, min: 1, description: 'Number of federated rounds the server runs.' },
  { key: 'fraction-fit', field: 'fractionFit', type: 'float', default: 1.0, min: 0, minExclusive: true, max: 1, description: 'Fraction of the joined workers sampled for training each round.' },
  { key: 'fraction-evaluate', field: 'fractionEvaluate', type: 'float', default: 1.0, min: 0, max: 1, description: 'Fraction of the joined workers sampled for federated evaluation (0: none).' },
  { key: 'min-fit-clients', field: 'minFitClients', type: 'int', default: 2, min: 1, description: 'Fewest training results a round needs; with fewer the round fails.' },
  { key: 'min-evaluate-clients', field: 'minEvaluateClients', type: 'int', default: 2, min: 0, description: 'Fewest evaluation results a federated evaluation needs.' },
  { key: 'min-available-clients', field: 'minAvailableClients', type: 'int', default: 2, min: 1, description: 'Workers that must have joined before the first round starts (≥ min-fit-clients).' },
  { key: 'local-epochs', field: 'localEpochs', type: 'int', default: 1, min: 1, description: 'Passes over its local data each worker makes per round.' },
  { key: 'batch-size', field: 'batchSize', type: 'int', default: 32, min: 1, description: 'Mini-batch size of local training.' },
  { key: 'learning-rate', field: 'learningRate', type: 'float', default: 0.1, min: 0, minExclusive: true, description: 'Step size of local gradient descent.' },
  { key: 'l2', field: 'l2', type: 'float', default: 0.001, min: 0, description: 'L2 regularisation strength.' },
  {
    key: 'strategy',
    field: 'strategy',
    type: 'choice',
    default: 'plain',
    values: ['plain', 'paillier', 'secagg'],
    reserved: ['enclave'],
    description: 'Aggregation: "plain" FedAvg, "paillier" (workers encrypt updates, the server sums ciphertexts), or "secagg" (pairwise masks, no key holder; see secure-aggregation); "enclave" is reserved for later.',
  },
  {
    key: 'key-holder',
    field: 'keyHolder',
    type: 'choice',
    default: 'server',
    values: ['server', 'authority', 'clients', 'threshold'],
    description: 'Who holds the Paillier secret key: the "server", a separate key "authority", the "clients" (keys dealt by the authority), or "threshold" key holders of which any k decrypt (see threshold).',
  },
  { key: 'key-bits', field: 'keyBits', type: 'choice', default: 2048, values: [1024, 2048, 3072, 4096], description: 'Paillier modulus size in bits (1024 is for tests only).' },
  { key: 'packing-fractional-bits', field: 'packingFractionalBits', type: 'int', default: 16, min: 0, max: 52, description: 'Fixed-point bits after the binary point of packed values (resolution 2^-bits).' },
  { key: 'packing-integer-bits', field: 'packingIntegerBits', type: 'int', default: 15, min: 1, max: 52, description: 'Fixed-point bits before the binary point (|value| < 2^bits); fractional + integer ≤ 52.' },
  { key: 'packing-max-contributions', field: 'packingMaxContributions', type: 'int', default: 0, min: 0, max: 2 ** 30, description: 'Most updates one encrypted sum holds: each packed slot gets ⌈log2 of it⌉ bits of headroom (fewer bits, more values per ciphertext); a round with more is refused, never wrapped. 0: max(1000, min-available-clients); neural-network runs use their num-clients.' },
  { key: 'round-timeout', field: 'roundTimeout', type: 'float', default: 120, min: 0, minExclusive: true, description: "Seconds the server waits for a round's results." },
  { key: 'join-timeout', field: 'joinTimeout', type: 'float', default: 300, min: 0, minExclusive: true, description: 'Seconds the server waits for min-available-clients workers to join.' },
  { key: 'max-message-bytes', field: 'maxMessageBytes', type: 'int', default: 64 * 1024 * 1024, min: 1024, description: 'Largest RPC message accepted, in bytes (default 64 MiB).' },
  { key: 'address', field: 'address', type: 'string', format: 'address', required: true, default: '127.0.0.1:9091', description: 'host:port the server listens on and workers connect to ([IPv6]:port allowed).' },
  { key: 'authority-address', field: 'authorityAddress', type: 'string', format: 'address', default: '', description: 'host:port of the key authority; required when key-holder is "authority" or "clients".' },
  { key: 'run-dir', field: 'runDir', type: 'string', format: 'path', required: true, default: 'runs/{time}-{strategy}', description: "Folder for the run's outputs (model, metrics, logs); {time} and {strategy} are filled in when the run starts, so by default every run gets a new folder (set a fixed folder to resume after a restart)." },
  { key: 'validate-set', field: 'validateSet', type: 'string', format: 'path', default: '', description: 'CSV the server evaluates the global model on (empty: none).' },
  { key: 'label', field: 'label', type: 'string', required: true, default: 'y', description: 'Name of the label column of the CSV data.' },
  { key: 'token', field: 'token', type: 'string', secret: true, default: '', description: 'Shared secret workers present to the server (empty: none); never printed.' },
  { key: 'tls-cert', field: 'tlsCert', type: 'string', format: 'path', default: '', description: 'PEM certificate of this party (with tls-key); required to listen on a non-loopback address unless --insecure-plaintext.' },
  { key: 'tls-key', field: 'tlsKey', type: 'string', format: 'path', default: '', description: 'PEM private key of tls-cert.' },
  { key: 'tls-ca', field: 'tlsCa', type: 'string', format: 'path', default: '', description: 'PEM CA bundle that verifies the peer (empty: system roots); on a listening party it also requires client certificates (mutual TLS).' },
  { key: 'identity', field: 'identity', type: 'string', format: 'path', default: '', description: 'This party\'s identity file (`cipherml identity create`); with roster it turns on identity mode (empty: the insecure development mode with tokens).' },
  { key: 'roster', field: 'roster', type: 'string', format: 'path', default: '', description: 'JSON roster of the pinned public identities this party trusts (`cipherml identity roster`).' },
  { key: 'paillier-key-fingerprint', field: 'paillierKeyFingerprint', type: 'string', default: '', description: 'Workers: encrypt only under the Paillier key with this fingerprint (32 hex digits over n and h_s; empty: accept a key signed by the pinned authority).' },
  { key: 'seed', field: 'seed', type: 'int', default: 42, description: 'Seed of sampling, initialisation and shuffling.' },
  { key: 'eval-every', field: 'evalEvery', type: 'int', default: 1, min: 1, description: 'Evaluate the global model every this many rounds.' },
  {
    key: 'secure-aggregation',
    field: 'secureAggregation',
    type: 'choice',
    default: 'off',
    values: ['off', 'pw', 'stable-pw', 'secagg+'],
    description: 'Secure aggregation protocol: "pw" (PW_ENCRYPT, survives dropouts), "stable-pw" (STABLE_PW_ENCRYPT, pairwise masks only, for parties that do not drop), "secagg+" (O(log n) neighbours); setting it selects strategy "secagg" (default "pw" there).',
  },
  { key: 'clipping-range', field: 'clippingRange', type: 'float', default: 8, min: 0, minExclusive: true, description: 'Secure aggregation: update values (and the FedAvg weight) are clipped to [-c, c]; clipped values are counted per round.' },
  { key: 'quantization-range', field: 'quantizationRange', type: 'int', default: 4194304, min: 2, max: 16777216, description: 'Secure aggregation: clipped values are quantized to the integers 0..Q-1 by stochastic rounding (Flower default 2^22).' },
  { key: 'modulus-range', field: 'modulusRange', type: 'int', default: 0, min: 0, max: 4294967296, description: 'Secure aggregation: masks live mod this power of two ≤ 2^32; 0 picks the smallest one the round sum of n·(Q-1) cannot wrap.' },
  { key: 'reconstruct-secrets-threshold', field: 'reconstructSecretsThreshold', type: 'int', default: 0, min: 0, description: 'Secure aggregation: Shamir threshold t (t + 1 shares reconstruct); 0 picks the least safe one: ⌊n/2⌋ + 1 (⌊2n/3⌋ + 1 under server-clients) for the n clients of a pw round, the Bell et al. 2020 bound for SecAgg+. Clients refuse a smaller one. Flower\'s reconstruction-threshold is t + 1.' },
  { key: 'share-secrets-ratio', field: 'shareSecretsRatio', type: 'float', default: 0.5, min: 0, minExclusive: true, max: 1, description: 'Secure aggregation: fraction of the selected clients that must complete the share-keys stage (and at least t + 1).' },
  { key: 'cipher-time-window', field: 'cipherTimeWindow', type: 'int', default: 60000, min: 100, description: 'Secure aggregation: milliseconds each stage after training waits for its messages (Flower: timeout in seconds).' },
  { key: 'num-shares', field: 'numShares', type: 'int', default: 0, min: 0, description: 'SecAgg+: shares per client including its own, i.e. neighbourhood size + 1 (odd); 0 derives the degree from n and secagg-corrupt-fraction, secagg-dropout-rate, secagg-statistical-security (Bell et al. 2020). Clients refuse a degree below that minimum.' },
  { key: 'collusion-model', field: 'collusionModel', type: 'choice', default: 'no-collusion', values: ['no-collusion', 'server-clients'], description: 'Secure aggregation threshold rule: t > n/2 ("no-collusion") or t > 2n/3 when the server may collude with clients ("server-clients").' },
  { key: 'threshold-violation', field: 'thresholdViolation', type: 'choice', default: 'refuse', values: ['refuse', 'warn'], description: 'What a round does when the threshold breaks the collusion-model rule: "refuse" to run, or "warn" and run.' },
  ...THRESHOLD_CONFIG_ROWS,
  { key: 'secagg-corrupt-fraction', field: 'secaggCorruptFraction', type: 'float', default: 1 / 3, min: 0, max: 0.99, description: 'Secure aggregation: γ, the fraction of clients that may be corrupt and collude with the server; with δ and σ it sets the SecAgg+ degree and threshold (Bell et al. 2020), which every client checks.' },
  { key: 'secagg-dropout-rate', field: 'secaggDropoutRate', type: 'float', default: 0.1, min: 0, max: 0.99, description: 'Secure aggregation: δ, the expected fraction of clients dropping out of a round.' },
  { key: 'secagg-statistical-security', field: 'secaggStatisticalSecurity', type: 'int', default: 40, min: 8, max: 128, description: 'Secure aggregation: σ, the SecAgg+ graph keeps privacy except with probability 2^-σ per round.' },
] as const satisfies readonly RunConfigKeySpec[];
/**
 * The run-config schema: every key with its type, default, range or allowed values and a
 * one-line description, in the order `--help` and {@link describeRunConfig} list them.
 *
 * Paths (`run-dir`, `validate-set`, `tls-*`) are used as given, i.e. relative to the current
 * directory. `strategy` values "secagg" and "enclave" are reserved for later versions and
 * rejected as not available yet.
 *
 * @example
 * ```ts
 * for (const spec of RUN_CONFIG_SCHEMA) console.log(spec.key, spec.default);
 * ```
 */
export const RUN_CONFIG_SCHEMA: readonly RunConfigKeySpec[] = SCHEMA_ROWS;

// Compile-time check that the schema covers every field of RunConfig.
type MissingFields = Exclude<RunConfigField, (typeof SCHEMA_ROWS)[number]['field']>;
const _schemaCoversRunConfig: [MissingFields] extends [never] ? true : MissingFields = true;

const SPECS: readonly RunConfigKeySpec[] = RUN_CONFIG_SCHEMA;

/** Prefix of the environment variables that set run-config keys. */
export const RUN_CONFIG_ENV_PREFIX = 'CIPHERML_';

/**
 * `CIPHERML_*` environment variables that are not run-config keys and that
 * {@link configFromEnv} therefore skips: `CIPHERML_NATIVE` (0 disables the GMP addon),
 * `CIPHERML_NATIVE_TIMEOUT_MS` and `CIPHERML_WORKER_TOKEN` (a worker's own token). Any other
 * `CIPHERML_*` variable must name a key or start with one of {@link RESERVED_ENV_PREFIXES}
 * (typo protection). `CIPHERML_TOKEN` is the `token` key. Add new non-config variables here.
 */
export const RESERVED_ENV_VARS = ['CIPHERML_NATIVE', 'CIPHERML_NATIVE_TIMEOUT_MS', 'CIPHERML_WORKER_TOKEN'] as const;

/**
 * Prefixes of the variables other commands own, skipped by {@link configFromEnv}: `he` options
 * (`CIPHERML_HE_*`), the gateway's (`CIPHERML_GATEWAY_*`), the service's (`CIPHERML_SERVE_*`) and
 * the test suites' server URLs (`CIPHERML_TEST_*`), so that a shell set up for one command can
 * still start a federated server.
 */
export const RESERVED_ENV_PREFIXES = ['CIPHERML_HE_', 'CIPHERML_GATEWAY_', 'CIPHERML_SERVE_', 'CIPHERML_TEST_'] as const;

/** The environment variable of a key: `num-server-rounds` → `CIPHERML_NUM_SERVER_ROUNDS`. */
function envName(key: string): string {
  return RUN_CONFIG_ENV_PREFIX + key.toUpperCase().replaceAll('-', '_');
}

const BY_KEY = new Map<string, RunConfigKeySpec>(SPECS.map((s) => [s.key, s]));
const BY_FIELD = new Map<string, RunConfigKeySpec>(SPECS.map((s) => [s.field, s]));
const BY_ENV = new Map<string, RunConfigKeySpec>(SPECS.map((s) => [envName(s.key), s]));

/**
 * The defaults of every key, from {@link RUN_CONFIG_SCHEMA}.
 *
 * @example
 * ```ts
 * DEFAULT_RUN_CONFIG.numServerRounds; // 30
 * ```
 */
export const DEFAULT_RUN_CONFIG: RunConfig = Object.freeze(Object.fromEntries(SPECS.map((s) => [s.field, s.default]))) as unknown as RunConfig;

/** How a rejected value is reported: the parameter the user wrote and where it came from. */
interface Origin {
  /** `num-server-rounds`, `CIPHERML_NUM_SERVER_ROUNDS` or `--num-server-rounds`. */
  readonly param: string;
  /** Appended to messages, e.g. ` (in run.toml)`. */
  readonly suffix: string;
  readonly source: string;
}

function invalid(problem: string, param: string, details: Record<string, unknown> = {}, cause?: unknown): CipherMLError {
  return new CipherMLError('CIPHERML_E_CONFIG_INVALID', problem, { param, details, ...(cause === undefined ? {} : { cause }) });
}

function fmt(n: number): string {
  return String(n);
}

/** What a key expects, in words: "an integer ≥ 1", "a number in (0, 1]", 'one of "a", "b"'. */
function expectation(spec: RunConfigKeySpec): string {
  switch (spec.type) {
    case 'int':
    case 'float': {
      const noun = spec.type === 'int' ? 'an integer' : 'a number';
      const lo = spec.min;
      const hi = spec.max;
      const loX = spec.type === 'float' && spec.minExclusive === true;
      const hiX = spec.type === 'float' && spec.maxExclusive === true;
      if (lo !== undefined && hi !== undefined) return `${noun} in ${loX ? '(' : '['}${fmt(lo)}, ${fmt(hi)}${hiX ? ')' : ']'}`;
      if (lo !== undefined) return `${noun} ${loX ? '>' : '≥'} ${fmt(lo)}`;
      if (hi !== undefined) return `${noun} ${hiX ? '<' : '≤'} ${fmt(hi)}`;
      return noun;
    }
    case 'choice':
      return `one of ${spec.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'string':
      if (spec.format === 'address') return 'a "host:port" address (port 1..65535, IPv6 host in brackets)';
      return spec.required === true ? 'a non-empty string' : 'a string';
  }
}

/** Why `s` is not a `host:port` address, or undefined if it is one. */
function addressProblem(s: string): string | undefined {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(s);
  if (m === null) {
    if (/^[^[\]]*:[^[\]]*:/.test(s)) return 'an IPv6 host must be in brackets, e.g. "[::1]:9091"';
    return 'expected "host:port"';
  }
  const [, v6, host = '', port = ''] = m;
  if (v6 !== undefined) {
    if (!isIPv6(v6)) return `"${v6}" in brackets is not an IPv6 address`;
  } else {
    if (host === '') return 'the host is empty';
    const labels = host.split('.');
    const numeric = labels.every((l) => /^\d+$/.test(l));
    if (numeric ? isIP(host) !== 4 : host.length > 253 || !labels.every((l) => /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/.test(l))) {
      return `"${host}" is not a valid host name or IPv4 address`;
    }
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return `the port ${JSON.stringify(port)} is not an integer in [1, 65535]`;
  return undefined;
}

/** Checks a typed value against its key; returns it or throws CONFIG_INVALID naming `origin.param`. */
function checkValue(spec: RunConfigKeySpec, value: unknown, origin: Origin): unknown {
  const forKey = origin.param === spec.key ? '' : ` for ${spec.key}`;
  const secret = spec.type === 'string' && spec.secret === true;
  const actual = secret ? `a ${typeof value} (value hidden)` : describe(value);
  const fail = (problem?: string): CipherMLError =>
    invalid(problem === undefined ? `expected ${expectation(spec)}${forKey}, got ${actual}${origin.suffix}` : `${problem}${forKey}${origin.suffix}`, origin.param, {
      key: spec.key,
      expected: expectation(spec),
      actual,
      source: origin.source,
    });
  switch (spec.type) {
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || (spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) throw fail();
      return value;
    case 'float':
      if (
        typeof value !== 'number' ||
        !Number.isFinite(value) ||
        (spec.min !== undefined && (spec.minExclusive === true ? value <= spec.min : value < spec.min)) ||
        (spec.max !== undefined && (spec.maxExclusive === true ? value >= spec.max : value > spec.max))
      ) {
        throw fail();
      }
      return value;
    case 'choice':
      if ((spec.values as readonly unknown[]).includes(value)) return value;
      if (typeof value === 'string' && spec.reserved?.includes(value) === true) {
        throw fail(`${JSON.stringify(value)} is reserved but not available yet in this version of cipherml; use ${expectation(spec)}`);
      }
      throw fail();
    case 'string': {
      if (typeof value !== 'string') throw fail();
      if (value === '' && spec.required === true) throw fail(`must not be empty`);
      if (spec.format === 'address' && value !== '') {
        const problem = addressProblem(value);
        if (problem !== undefined) throw fail(`${JSON.stringify(value)} is not a valid address: ${problem}`);
      }
      return value;
    }
  }
}

const INT_TEXT = /^[+-]?\d+$/;
const FLOAT_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Parses the text of an environment variable or flag by the key's type, then checks it. */
function parseText(spec: RunConfigKeySpec, text: string, origin: Origin): unknown {
  const t = text.trim();
  const numeric = spec.type === 'int' || spec.type === 'float' || (spec.type === 'choice' && typeof spec.default === 'number');
  if (!numeric) return checkValue(spec, text, origin);
  const pattern = spec.type === 'float' ? FLOAT_TEXT : INT_TEXT;
  // Text that is not a number literal stays a string, which checkValue rejects with the expectation.
  return checkValue(spec, pattern.test(t) ? Number(t) : text, origin);
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** `numServerRounds`, `NUM_SERVER_ROUNDS`, `num_server_rounds` → `num-server-rounds`. */
function normalizeName(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replaceAll('_', '-');
}

/** The candidate nearest to `name` (containment first, then edit distance on normalized names). */
function nearest(name: string, candidates: readonly string[], normalize: (s: string) => string = normalizeName): string {
  const n = normalize(name);
  let best = candidates[0] ?? '';
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const m = normalize(c);
    // One name containing the other ("rounds" in "num-server-rounds") ranks before any mere edit.
    const contained = n.length >= 3 && (m.includes(n) || n.includes(m));
    // Then every whole word the two share ("num", "rounds") outweighs a few edits.
    const words = new Set(m.split(/[-_]/));
    const shared = n.split(/[-_]/).filter((w) => w.length > 1 && words.has(w)).length;
    const score = (contained ? 0 : 1000) + editDistance(n, m) - 10 * shared;
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

function unknownKey(name: string, where: string, param: string = name): CipherMLError {
  const suggestion = nearest(
    name,
    SPECS.map((s) => s.key),
  );
  return invalid(`unknown key ${JSON.stringify(name)}${where}; did you mean ${JSON.stringify(suggestion)}? (keys: see --help)`, param, { key: name, suggestion });
}

function isTable(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === null || proto === Object.prototype;
}

/**
 * Parses a run-config TOML document into the keys it sets (unset keys are absent; no defaults
 * are filled in and no cross-field checks run — see {@link resolveRunConfig}).
 *
 * Keys may be written at the top level, or under a `[tool.cipherml]` table so that the config can
 * live in a shared project file (like Flower's `[tool.flwr.app.config]` in `pyproject.toml`).
 * When `[tool.cipherml]` is present, other top-level tables (`[project]`, `[build-system]`, …)
 * are ignored; `[tool.<other>]` tables are always ignored. A key set both at the top level and in
 * `[tool.cipherml]` is an error. Values are typed by TOML: `seed = "42"` is a string, not an
 * integer, and is rejected.
 *
 * Errors (all `CIPHERML_E_CONFIG_INVALID`): a syntax error gives `param` = `source` and the
 * line and column; an unknown key names it and suggests the nearest known key; a wrong type or
 * out-of-range value names the key, the expected and the actual value.
 *
 * @example
 * ```ts
 * parseRunConfigToml('num-server-rounds = 10\nstrategy = "paillier"\n');
 * // { numServerRounds: 10, strategy: 'paillier' }
 * parseRunConfigToml('[tool.cipherml]\nfraction-fit = 0.5\n', 'pyproject.toml');
 * // { fractionFit: 0.5 }
 * ```
 */
export function parseRunConfigToml(text: string, source = 'run.toml'): Partial<RunConfig> {
  // Bounded: size, nesting (inline and dotted), key count; errors name the source (core/bounded-toml.ts).
  const doc = parseTomlBounded(text, source, source);
  const out: Record<string, unknown> = {};
  const setAt = new Map<string, string>();

  let section: Record<string, unknown> | undefined;
  const tool = doc['tool'];
  if (tool !== undefined) {
    if (!isTable(tool)) throw invalid(`expected a table ([tool.cipherml]), got ${describe(tool)} (in ${source})`, 'tool', { source });
    const c = tool['cipherml'];
    if (c !== undefined) {
      if (!isTable(c)) throw invalid(`expected a table, got ${describe(c)} (in ${source})`, 'tool.cipherml', { source });
      section = c;
    }
  }

  const read = (name: string, value: unknown, where: string): void => {
    const spec = BY_KEY.get(name);
    if (spec === undefined) {
      if (isTable(value)) {
        throw invalid(
          `unknown table [${name}]${where}; write the keys at the top level or under [tool.cipherml]`,
          name,
          { key: name, source },
        );
      }
      throw unknownKey(name, where);
    }
    const previous = setAt.get(name);
    if (previous !== undefined) throw invalid(`set both ${previous} and${where}; keep one`, name, { key: name, source });
    setAt.set(name, where);
    out[spec.field] = checkValue(spec, value, { param: name, suffix: where, source });
  };

  for (const [name, value] of Object.entries(doc)) {
    if (name === 'tool') continue;
    if (name === 'options' && isTable(value)) continue; // Flower's federation options (options.num-supernodes), read by the simulation
    if (section !== undefined && isTable(value)) continue; // a shared project file's other tables
    read(name, value, ` (in ${source})`);
  }
  if (section !== undefined) {
    for (const [name, value] of Object.entries(section)) if (!(name === 'options' && isTable(value))) read(name, value, ` (in ${source} [tool.cipherml])`);
  }
  return out as Partial<RunConfig>;
}

/**
 * Reads the keys set by `CIPHERML_*` environment variables: key K is variable `CIPHERML_` + K
 * upper-cased with `-` → `_` (`num-server-rounds` → `CIPHERML_NUM_SERVER_ROUNDS`,
 * `token` → `CIPHERML_TOKEN`). Values are parsed by the key's type (`"30"` → 30). Variables
 * listed in {@link RESERVED_ENV_VARS} are skipped; any other `CIPHERML_*` variable that is not a
 * key is rejected as a probable typo. Variables without the prefix are ignored. An empty value
 * sets a string key to `""` and is an error for a numeric key.
 *
 * Errors are `CIPHERML_E_CONFIG_INVALID` with `param` = the variable's name.
 *
 * @example
 * ```ts
 * configFromEnv(process.env); // e.g. { numServerRounds: 5 } when CIPHERML_NUM_SERVER_ROUNDS=5
 * ```
 */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>): Partial<RunConfig> {
  const out: Record<string, unknown> = {};
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(RUN_CONFIG_ENV_PREFIX) || text === undefined) continue;
    const spec = BY_ENV.get(name);
    if (spec === undefined) {
      if ((RESERVED_ENV_VARS as readonly string[]).includes(name) || RESERVED_ENV_PREFIXES.some((p) => name.startsWith(p))) continue;
      const suggestion = nearest(name, [...BY_ENV.keys(), ...RESERVED_ENV_VARS], (s) => s.toUpperCase().replaceAll('-', '_'));
      throw invalid(`${name} is not a run-config variable; did you mean ${suggestion}? (variables are CIPHERML_ + the key in upper case with _; see --help)`, name, {
        variable: name,
        suggestion,
      });
    }
    out[spec.field] = parseText(spec, text, { param: name, suffix: '', source: 'env' });
  }
  return out as Partial<RunConfig>;
}

/**
 * Reads the keys set by command-line flags. `flags` is keyed by kebab-case key names
 * (`num-server-rounds`) or by their camelCase forms (`numServerRounds`, as commander's `opts()`
 * gives them); strings are parsed by the key's type, numbers are checked as they are. Entries
 * that are not run-config keys are ignored (commander already rejects unknown flags, and `opts()`
 * carries the command's other options); `undefined` entries are unset.
 *
 * Errors are `CIPHERML_E_CONFIG_INVALID` with `param` = `--<key>`.
 *
 * @example
 * ```ts
 * configFromFlags({ numServerRounds: '5', 'key-bits': 3072 }); // { numServerRounds: 5, keyBits: 3072 }
 * ```
 */
export function configFromFlags(flags: Readonly<Record<string, unknown>>): Partial<RunConfig> {
  const out: Record<string, unknown> = {};
  const given = new Map<string, string>();
  for (const [name, value] of Object.entries(flags)) {
    const spec = BY_KEY.get(name) ?? BY_FIELD.get(name);
    if (spec === undefined || value === undefined) continue;
    const param = `--${spec.key}`;
    const origin: Origin = { param, suffix: '', source: 'flags' };
    const parsed = typeof value === 'string' ? parseText(spec, value, origin) : checkValue(spec, value, origin);
    const other = given.get(spec.key);
    if (other !== undefined && out[spec.field] !== parsed) {
      throw invalid(`given twice with different values (as "${other}" and "${name}")`, param, { key: spec.key });
    }
    given.set(spec.key, name);
    out[spec.field] = parsed;
  }
  return out as Partial<RunConfig>;
}

/** The layers of {@link resolveRunConfig}, lowest precedence first. */
export interface RunConfigParts {
  readonly file?: Partial<RunConfig> | undefined;
  readonly env?: Partial<RunConfig> | undefined;
  readonly flags?: Partial<RunConfig> | undefined;
  /**
   * A command's own refusal, run on the merged values before the generic validation, so that a
   * command that cannot run a mode at all says so before asking for that mode's other keys.
   */
  readonly check?: ((merged: Readonly<RunConfig>) => void) | undefined;
}

const PRECEDENCE: Readonly<Record<RunConfigSource, number>> = { default: 0, file: 1, env: 2, flags: 3 };

/**
 * Merges the layers over {@link DEFAULT_RUN_CONFIG} with precedence defaults < file < env <
 * flags, then validates the result with {@link validateRunConfig}; messages about cross-field
 * conflicts say which layer each value came from.
 *
 * @example
 * ```ts
 * const config = resolveRunConfig({ file: { numServerRounds: 10 }, env: { numServerRounds: 20 } });
 * config.numServerRounds; // 20
 * ```
 */
export function resolveRunConfig(parts: RunConfigParts): RunConfig {
  const merged: Record<string, unknown> = { ...DEFAULT_RUN_CONFIG };
  const sources: Partial<Record<RunConfigField, RunConfigSource>> = {};
  for (const layer of ['file', 'env', 'flags'] as const) {
    const part = parts[layer];
    if (part === undefined) continue;
    for (const [field, value] of Object.entries(part)) {
      const spec = BY_FIELD.get(field);
      if (spec === undefined) {
        const suggestion = nearest(
          field,
          SPECS.map((s) => s.field),
        );
        throw invalid(`unknown field ${JSON.stringify(field)} in the ${layer} layer; did you mean ${JSON.stringify(suggestion)}?`, field, { field, suggestion });
      }
      if (value === undefined) continue;
      merged[field] = value;
      sources[spec.field] = layer;
    }
  }
  parts.check?.(merged as unknown as RunConfig);
  return validateRunConfig(merged as unknown as RunConfig, sources);
}

/**
 * Checks a complete config: every field against its key's type and range, then the cross-field
 * rules — min-available-clients ≥ min-fit-clients; packing-fractional-bits +
 * packing-integer-bits ≤ 52; authority-address is set when key-holder is "authority" or
 * "clients"; tls-cert and tls-key are given together. Returns the config frozen. `sources`, when
 * given, names the layer of each value in messages, and a conflict is reported against the key
 * set by the highest-precedence layer (the one the user most likely just changed).
 *
 * @example
 * ```ts
 * validateRunConfig({ ...DEFAULT_RUN_CONFIG, minFitClients: 3 }); // throws: min-available-clients (2) < min-fit-clients (3)
 * ```
 */
export function validateRunConfig(config: RunConfig, sources: Partial<Record<RunConfigField, RunConfigSource>> = {}): RunConfig {
  const sourceOf = (f: RunConfigField): RunConfigSource => sources[f] ?? 'default';
  const label = (s: RunConfigSource): string => (s === 'default' ? 'default' : `from ${s}`);
  const record = config as unknown as Record<string, unknown>;
  for (const spec of SPECS) {
    const s = sourceOf(spec.field);
    checkValue(spec, record[spec.field], { param: spec.key, suffix: ` (${label(s)})`, source: s });
  }
  const show = (f: RunConfigField): string => {
    const spec = BY_FIELD.get(f)!;
    const v = record[f];
    return `${spec.key} = ${spec.type === 'string' && spec.secret === true ? '***' : JSON.stringify(v)} (${label(sourceOf(f))})`;
  };
  const blame = (a: RunConfigField, b: RunConfigField): string => BY_FIELD.get(PRECEDENCE[sourceOf(b)] > PRECEDENCE[sourceOf(a)] ? b : a)!.key;
  const conflict = (problem: string, param: string, fields: readonly RunConfigField[]): CipherMLError =>
    invalid(problem, param, Object.fromEntries(fields.map((f) => [BY_FIELD.get(f)!.key, { value: record[f], source: sourceOf(f) }])));

  if (config.minAvailableClients < config.minFitClients) {
    throw conflict(
      `${show('minAvailableClients')} is below ${show('minFitClients')}: the server would start rounds it cannot fill`,
      blame('minAvailableClients', 'minFitClients'),
      ['minAvailableClients', 'minFitClients'],
    );
  }
  if (config.packingFractionalBits + config.packingIntegerBits > 52) {
    throw conflict(
      `${show('packingFractionalBits')} + ${show('packingIntegerBits')} = ${config.packingFractionalBits + config.packingIntegerBits} exceeds 52 (float64 mantissa)`,
      blame('packingIntegerBits', 'packingFractionalBits'),
      ['packingFractionalBits', 'packingIntegerBits'],
    );
  }
  if (config.packingMaxContributions !== 0 && config.packingMaxContributions < config.minAvailableClients) {
    throw conflict(
      `${show('packingMaxContributions')} is below ${show('minAvailableClients')}: a round of every available client would overflow the packed slots`,
      blame('packingMaxContributions', 'minAvailableClients'),
      ['packingMaxContributions', 'minAvailableClients'],
    );
  }
  if ((config.keyHolder === 'authority' || config.keyHolder === 'clients') && config.authorityAddress === '') {
    throw conflict(`is required when ${show('keyHolder')}`, 'authority-address', ['keyHolder', 'authorityAddress']);
  }
  checkThresholdConfig(config);
  if ((config.tlsCert === '') !== (config.tlsKey === '')) {
    const [given, missing] = config.tlsCert === '' ? (['tlsKey', 'tlsCert'] as const) : (['tlsCert', 'tlsKey'] as const);
    throw conflict(`is required with ${show(given)}: a TLS certificate and its private key are given together`, BY_FIELD.get(missing)!.key, ['tlsCert', 'tlsKey']);
  }
  if ((config.identity === '') !== (config.roster === '')) {
    const [given, missing] = config.identity === '' ? (['roster', 'identity'] as const) : (['identity', 'roster'] as const);
    throw conflict(`is required with ${show(given)}: identity mode needs this party's identity and the roster it trusts`, BY_FIELD.get(missing)!.key, ['identity', 'roster']);
  }
  if (config.paillierKeyFingerprint !== '' && !/^[0-9a-fA-F]{32}$/.test(config.paillierKeyFingerprint)) {
    throw conflict(`${show('paillierKeyFingerprint')} must be 32 hex digits (as printed by \`cipherml paillier keygen\` and the key authority)`, 'paillier-key-fingerprint', ['paillierKeyFingerprint']);
  }
  if (config.secureAggregation !== 'off' && config.strategy === 'paillier') {
    throw conflict(`cannot be combined with ${show('strategy')}: choose Paillier or secure aggregation`, blame('secureAggregation', 'strategy'), ['secureAggregation', 'strategy']);
  }
  if (config.modulusRange !== 0 && !Number.isInteger(Math.log2(config.modulusRange))) {
    throw conflict(`${show('modulusRange')} must be 0 or a power of two (masks are integers mod 2^k)`, 'modulus-range', ['modulusRange']);
  }
  if (config.modulusRange !== 0 && config.modulusRange < config.quantizationRange) {
    throw conflict(`${show('modulusRange')} is below ${show('quantizationRange')}: one quantized value would already wrap`, blame('modulusRange', 'quantizationRange'), ['modulusRange', 'quantizationRange']);
  }
  if (config.numShares !== 0 && (config.numShares < 3 || config.numShares % 2 === 0)) {
    throw conflict(`${show('numShares')} must be 0 or an odd number ≥ 3 (each client and an even number of neighbours)`, 'num-shares', ['numShares']);
  }
  // One option enables secure aggregation: a protocol implies strategy "secagg", and strategy
  // "secagg" without a protocol runs PW_ENCRYPT.
  if (config.secureAggregation !== 'off' && config.strategy !== 'secagg') return Object.freeze({ ...config, strategy: 'secagg' });
  if (config.strategy === 'secagg' && config.secureAggregation === 'off') return Object.freeze({ ...config, secureAggregation: 'pw' });
  return Object.freeze({ ...config });
}

/** Options of {@link loadRunConfig}. */
export interface LoadRunConfigOptions {
  /** TOML file to read; none when absent. */
  readonly path?: string | undefined;
  /** Environment to read `CIPHERML_*` variables from (pass `process.env`); none when absent. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Command-line flags, e.g. commander's `opts()`; see {@link configFromFlags}. */
  readonly flags?: Readonly<Record<string, unknown>> | undefined;
  /** See {@link RunConfigParts.check}. */
  readonly check?: ((merged: Readonly<RunConfig>) => void) | undefined;
}

/**
 * Loads the run config: the TOML file at `path` (read with `readFileBounded`, at most 1 MiB; a missing file is
 * `CIPHERML_E_IO`), then `env`, then `flags`, resolved and validated by
 * {@link resolveRunConfig}. Layers that are not given are skipped; in particular the process
 * environment is read only when passed as `env`.
 *
 * @example
 * ```ts
 * const config = await loadRunConfig({ path: 'examples/homo-lr/run.toml', env: process.env, flags: cmd.opts() });
 * ```
 */
export async function loadRunConfig(options: LoadRunConfigOptions = {}): Promise<RunConfig> {
  let file: Partial<RunConfig> | undefined;
  if (options.path !== undefined) {
    const bytes = await readFileBounded(options.path, '--config', DEFAULT_TOML_LIMITS.maxChars);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (e) {
      throw invalid(`${options.path} is not UTF-8 text`, options.path, { source: options.path }, e);
    }
    file = parseRunConfigToml(text, options.path);
  }
  return resolveRunConfig({
    file,
    env: options.env === undefined ? undefined : configFromEnv(options.env),
    flags: options.flags === undefined ? undefined : configFromFlags(options.flags),
    check: options.check,
  });
}

/**
 * A kebab-case view of a config for printing or `--json`, in schema order. The token is shown
 * as `"***"` when set (and `""` when not), never in clear.
 *
 * @example
 * ```ts
 * console.log(JSON.stringify(describeRunConfig(config), null, 2)); // { "num-server-rounds": 30, … "token": "***", … }
 * ```
 */
export function describeRunConfig(config: RunConfig): Record<string, unknown> {
  const record = config as unknown as Record<string, unknown>;
  return Object.fromEntries(
    SPECS.map((s) => {
      const v = record[s.field];
      return [s.key, s.type === 'string' && s.secret === true && v !== '' ? '***' : v];
    }),
  );
}

/** One `--<key> <value>` option for the CLI. */
export interface RunConfigOption {
  /** Commander flag syntax, e.g. `"--num-server-rounds <value>"`. */
  readonly flag: string;
  /** Help text: the key's description, expected values, default and environment variable. */
  readonly description: string;
  /** The kebab-case key. */
  readonly key: RunConfigKey;
}

/**
 * The CLI options of every key, from the schema. Declare them without a commander default (the
 * defaults live in the schema; a commander default would override the file and environment).
 *
 * @example
 * ```ts
 * for (const o of runConfigOptions()) cmd.option(o.flag, o.description);
 * const config = await loadRunConfig({ path: cmd.opts().config, env: process.env, flags: cmd.opts() });
 * ```
 */
export function runConfigOptions(): RunConfigOption[] {
  return SPECS.map((s) => {
    const shown = s.type === 'string' && s.default === '' ? 'unset' : JSON.stringify(s.default);
    return {
      flag: `--${s.key} <value>`,
      description: `${s.description} Expects ${expectation(s)}; default ${shown}; env ${envName(s.key)}.`,
      key: s.key,
    };
  });
}
