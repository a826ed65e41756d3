import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import fc from 'fast-check';
import { stringify } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { codeOfAsync } from '../../test/helpers.ts';
import { isCipherMLError, type CipherMLError } from '../core/errors.ts';
import { packingFor } from './run.ts';
import {
  DEFAULT_RUN_CONFIG,
  RESERVED_ENV_VARS,
  RUN_CONFIG_SCHEMA,
  configFromEnv,
  configFromFlags,
  describeRunConfig,
  loadRunConfig,
  parseRunConfigToml,
  resolveRunConfig,
  runConfigOptions,
  validateRunConfig,
  type RunConfig,
  type RunConfigKeySpec,
} from './config.ts';

/** The CipherMLError `f` throws (fails the test if it throws nothing or something else). */
function caught(f: () => unknown): CipherMLError {
  try {
    f();
  } catch (e) {
    if (isCipherMLError(e)) return e;
    throw new Error(`expected a CipherMLError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a CipherMLError, nothing was thrown');
}

/** Asserts CONFIG_INVALID with the given param and a message matching `pattern`. */
function expectInvalid(f: () => unknown, param: string, pattern?: RegExp): CipherMLError {
  const e = caught(f);
  expect(e.code).toBe('CIPHERML_E_CONFIG_INVALID');
  expect(e.param).toBe(param);
  if (pattern !== undefined) expect(e.message).toMatch(pattern);
  return e;
}

const SPECS: readonly RunConfigKeySpec[] = RUN_CONFIG_SCHEMA;
const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (key: string) => `CIPHERML_${key.toUpperCase().replaceAll('-', '_')}`;

/** Values valid for one key on its own (no cross-field constraints). */
function arbitraryFor(spec: RunConfigKeySpec): fc.Arbitrary<unknown> {
  switch (spec.type) {
    case 'int':
      return fc.bigInt({ min: BigInt(spec.min ?? Number.MIN_SAFE_INTEGER), max: BigInt(spec.max ?? Number.MAX_SAFE_INTEGER) }).map(Number);
    case 'float':
      return fc
        .double({ min: spec.min ?? -1e300, max: spec.max ?? 1e300, minExcluded: spec.minExclusive === true, maxExcluded: spec.maxExclusive === true, noNaN: true, noDefaultInfinity: true })
        .map((v) => (v === 0 ? 0 : v));
    case 'choice':
      return fc.constantFrom(...(spec.values as readonly unknown[]));
    case 'string':
      if (spec.format === 'address') {
        const valid = ['127.0.0.1:9091', '[::1]:1', 'localhost:65535', 'ps-0.example.org:443', '[fe80::1]:8080'];
        return fc.constantFrom(...(spec.required === true ? valid : ['', ...valid]));
      }
      return fc.string({ minLength: spec.required === true ? 1 : 0 });
  }
}

/** Arbitrary subsets of the keys with valid values, as camelCase partial configs. */
const partialConfig: fc.Arbitrary<Record<string, unknown>> = fc.record(Object.fromEntries(SPECS.map((s) => [s.field, arbitraryFor(s)])), { requiredKeys: [] });

describe('run config schema and defaults', () => {
  it('has one kebab-case key per RunConfig field, matching its camelCase field', () => {
    const keys = SPECS.map((s) => s.key);
    expect(new Set(keys).size).toBe(keys.length);
    for (const s of SPECS) {
      expect(s.key).toBe(kebab(s.field));
      expect(s.key).toMatch(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
      expect(s.description.length).toBeGreaterThan(10);
    }
    expect(Object.keys(DEFAULT_RUN_CONFIG).sort()).toEqual(SPECS.map((s) => s.field).sort());
  });

  it('resolves to the documented defaults, which pass validation', () => {
    const config = resolveRunConfig({});
    expect(config).toEqual(DEFAULT_RUN_CONFIG);
    expect(config).toMatchObject({
      numServerRounds: 30,
      fractionFit: 1,
      fractionEvaluate: 1,
      minFitClients: 2,
      minEvaluateClients: 2,
      minAvailableClients: 2,
      localEpochs: 1,
      batchSize: 32,
      learningRate: 0.1,
      l2: 0.001,
      strategy: 'plain',
      keyHolder: 'server',
      keyBits: 2048,
      packingFractionalBits: 16,
      packingIntegerBits: 15,
      packingMaxContributions: 0,
      roundTimeout: 120,
      joinTimeout: 300,
      maxMessageBytes: 64 * 1024 * 1024,
      address: '127.0.0.1:9091',
      authorityAddress: '',
      runDir: 'runs/{time}-{strategy}',
      validateSet: '',
      label: 'y',
      token: '',
      tlsCert: '',
      tlsKey: '',
      tlsCa: '',
      identity: '',
      roster: '',
      paillierKeyFingerprint: '',
      seed: 42,
      evalEvery: 1,
      secureAggregation: 'off',
      clippingRange: 8,
      quantizationRange: 2 ** 22,
      modulusRange: 0,
      reconstructSecretsThreshold: 0,
      shareSecretsRatio: 0.5,
      cipherTimeWindow: 60_000,
      numShares: 0,
      collusionModel: 'no-collusion',
      thresholdViolation: 'refuse',
      threshold: '',
      thresholdPublicKey: '',
      thresholdFingerprint: '',
      thresholdHolders: '',
      thresholdRoster: '',
      secaggCorruptFraction: 1 / 3,
      secaggDropoutRate: 0.1,
      secaggStatisticalSecurity: 40,
    } satisfies RunConfig);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(DEFAULT_RUN_CONFIG)).toBe(true);
    expect(validateRunConfig(DEFAULT_RUN_CONFIG)).toEqual(DEFAULT_RUN_CONFIG);
  });
});

describe('parseRunConfigToml', () => {
  it('reads kebab-case keys into camelCase fields, leaving unset keys absent', () => {
    expect(parseRunConfigToml('num-server-rounds = 10\nstrategy = "paillier"\nkey-bits = 3072\nfraction-fit = 0.5\nround-timeout = 60\n')).toEqual({
      numServerRounds: 10,
      strategy: 'paillier',
      keyBits: 3072,
      fractionFit: 0.5,
      roundTimeout: 60,
    });
    expect(parseRunConfigToml('')).toEqual({});
  });

  it('reads keys under [tool.cipherml], ignoring other tools and a project file’s other tables', () => {
    const pyproject = [
      '[project]',
      'name = "my-app"',
      '[tool.flwr.app.config]',
      'num-server-rounds = 99',
      '[tool.cipherml]',
      'num-server-rounds = 7',
      'learning-rate = 0.05',
    ].join('\n');
    expect(parseRunConfigToml(pyproject, 'pyproject.toml')).toEqual({ numServerRounds: 7, learningRate: 0.05 });
    expect(parseRunConfigToml('seed = 1\n[tool.cipherml]\nbatch-size = 8\n')).toEqual({ seed: 1, batchSize: 8 });
    // [tool.<other>] alone is ignored; top-level keys still count.
    expect(parseRunConfigToml('seed = 3\n[tool.black]\nline-length = 100\n')).toEqual({ seed: 3 });
  });

  it('rejects a key set both at the top level and in [tool.cipherml]', () => {
    expectInvalid(() => parseRunConfigToml('seed = 1\n[tool.cipherml]\nseed = 2\n'), 'seed', /both/);
  });

  it('rejects unknown keys, suggesting the nearest known key', () => {
    expectInvalid(() => parseRunConfigToml('num-server-round = 3\n'), 'num-server-round', /unknown key "num-server-round".*did you mean "num-server-rounds"/);
    expectInvalid(() => parseRunConfigToml('[tool.cipherml]\nlearning_rate = 0.1\n'), 'learning_rate', /\[tool\.cipherml\]\); did you mean "learning-rate"/);
    expectInvalid(() => parseRunConfigToml('rounds = 3\n'), 'rounds', /did you mean "num-server-rounds"/);
    expectInvalid(() => parseRunConfigToml('[cipherml]\nseed = 1\n'), 'cipherml', /unknown table \[cipherml\].*\[tool\.cipherml\]/);
    // Without [tool.cipherml] the file is a run config: every top-level table must be a key.
    expectInvalid(() => parseRunConfigToml('[project]\nname = "x"\n'), 'project', /unknown table/);
    for (const s of SPECS) {
      const snake = s.key.replaceAll('-', '_');
      if (snake === s.key) continue;
      const e = expectInvalid(() => parseRunConfigToml(`${snake} = 1\n`), snake);
      expect(e.details?.['suggestion']).toBe(s.key);
    }
  });

  it('rejects wrong types and out-of-range values, naming the key, the expectation and the value', () => {
    const cases: [string, string, RegExp][] = [
      ['num-server-rounds = 0', 'num-server-rounds', /expected an integer ≥ 1, got 0 \(in run\.toml\)/],
      ['num-server-rounds = 2.5', 'num-server-rounds', /expected an integer ≥ 1, got 2\.5/],
      ['num-server-rounds = "30"', 'num-server-rounds', /expected an integer ≥ 1, got "30"/],
      ['fraction-fit = 0.0', 'fraction-fit', /expected a number in \(0, 1\], got 0/],
      ['fraction-fit = 1.5', 'fraction-fit', /in \(0, 1\], got 1\.5/],
      ['fraction-evaluate = -0.1', 'fraction-evaluate', /in \[0, 1\], got -0\.1/],
      ['min-evaluate-clients = -1', 'min-evaluate-clients', /integer ≥ 0, got -1/],
      ['learning-rate = 0.0', 'learning-rate', /number > 0, got 0/],
      ['learning-rate = inf', 'learning-rate', /got Infinity/],
      ['l2 = nan', 'l2', /got NaN/],
      ['key-bits = 512', 'key-bits', /one of 1024, 2048, 3072, 4096, got 512/],
      ['key-bits = "2048"', 'key-bits', /got "2048"/],
      ['strategy = "fedprox"', 'strategy', /one of "plain", "paillier", "secagg", got "fedprox"/],
      ['key-holder = "nobody"', 'key-holder', /one of "server", "authority", "clients"/],
      ['packing-fractional-bits = 53', 'packing-fractional-bits', /integer in \[0, 52\], got 53/],
      ['packing-integer-bits = 0', 'packing-integer-bits', /integer in \[1, 52\], got 0/],
      ['round-timeout = 0', 'round-timeout', /number > 0/],
      ['join-timeout = -5', 'join-timeout', /number > 0/],
      ['max-message-bytes = 1023', 'max-message-bytes', /integer ≥ 1024, got 1023/],
      ['run-dir = ""', 'run-dir', /must not be empty/],
      ['label = 3', 'label', /got 3/],
      ['seed = 1.5', 'seed', /expected an integer, got 1\.5/],
      ['eval-every = 0', 'eval-every', /integer ≥ 1/],
      ['tls-ca = ["a"]', 'tls-ca', /got array\(1\)/],
      ['validate-set = 1979-05-27', 'validate-set', /expected a string/],
      ['address = { host = "x" }', 'address', /expected a "host:port" address/],
    ];
    for (const [toml, param, pattern] of cases) {
      const e = expectInvalid(() => parseRunConfigToml(toml), param, pattern);
      expect(e.details).toMatchObject({ key: param, source: 'run.toml' });
    }
  });

  it('rejects the reserved strategy as not available yet', () => {
    expectInvalid(() => parseRunConfigToml('strategy = "enclave"'), 'strategy', /"enclave" is reserved but not available yet.*"plain", "paillier", "secagg"/);
  });

  it('enables secure aggregation with one option, either way round', () => {
    expect(resolveRunConfig({ flags: { strategy: 'secagg' } })).toMatchObject({ strategy: 'secagg', secureAggregation: 'pw' });
    expect(resolveRunConfig({ file: parseRunConfigToml('secure-aggregation = "secagg+"') })).toMatchObject({ strategy: 'secagg', secureAggregation: 'secagg+' });
    expect(resolveRunConfig({})).toMatchObject({ strategy: 'plain', secureAggregation: 'off' });
  });

  it('rejects secure-aggregation settings that cannot work', () => {
    expectInvalid(() => resolveRunConfig({ flags: { strategy: 'paillier', secureAggregation: 'pw' } }), 'secure-aggregation', /cannot be combined with strategy = "paillier"/);
    expectInvalid(() => resolveRunConfig({ flags: { modulusRange: 3000 } }), 'modulus-range', /power of two/);
    expectInvalid(() => resolveRunConfig({ flags: { modulusRange: 1024, quantizationRange: 4096 } }), 'modulus-range', /below quantization-range/);
    expectInvalid(() => resolveRunConfig({ flags: { numShares: 4 } }), 'num-shares', /odd number/);
    expectInvalid(() => parseRunConfigToml('share-secrets-ratio = 0'), 'share-secrets-ratio', /in \(0, 1\]/);
    expect(resolveRunConfig({ flags: { modulusRange: 2 ** 32 } }).modulusRange).toBe(2 ** 32);
  });

  it('validates addresses: host:port with port 1..65535, IPv6 in brackets', () => {
    for (const ok of ['127.0.0.1:9091', '0.0.0.0:1', 'localhost:65535', 'ps-0.example.org:443', '[::1]:9091', '[2001:db8::7]:50051', 'server_1:80']) {
      expect(parseRunConfigToml(`address = "${ok}"`)).toEqual({ address: ok });
    }
    const bad: [string, RegExp][] = [
      ['localhost', /expected "host:port"/],
      ['localhost:0', /port "0"/],
      ['localhost:65536', /port "65536"/],
      ['localhost:', /port ""/],
      ['localhost:80x', /port "80x"/],
      [':9091', /host is empty/],
      ['::1:9091', /IPv6 host must be in brackets/],
      ['[not-v6]:80', /not an IPv6 address/],
      ['999.1.1.1:80', /not a valid host name or IPv4/],
      ['a b:80', /not a valid host name/],
      ['-bad-.org:80', /not a valid host name/],
      ['', /must not be empty/],
    ];
    for (const [address, pattern] of bad) expectInvalid(() => parseRunConfigToml(`address = "${address}"`), 'address', pattern);
    // authority-address may be empty (unset) but not malformed.
    expect(parseRunConfigToml('authority-address = ""')).toEqual({ authorityAddress: '' });
    expectInvalid(() => parseRunConfigToml('authority-address = "authority"'), 'authority-address', /not a valid address/);
  });

  it('reports TOML syntax errors with the line and column, param = the source', () => {
    const e = expectInvalid(() => parseRunConfigToml('seed = 1\nbatch-size = = 2\n', 'conf/run.toml'), 'conf/run.toml', /invalid TOML at line 2, column \d+/);
    expect(e.details).toMatchObject({ line: 2, source: 'conf/run.toml' });
    expectInvalid(() => parseRunConfigToml('seed = 1\nseed = 2\n'), 'run.toml', /line 2/);
    expectInvalid(() => parseRunConfigToml('__proto__ = 1\n'), 'run.toml', /line 1/);
  });

  it('round-trips any valid per-key values through TOML (property)', () => {
    fc.assert(
      fc.property(partialConfig, (partial) => {
        const toml = stringify(Object.fromEntries(Object.entries(partial).map(([f, v]) => [kebab(f), v])));
        expect(parseRunConfigToml(toml)).toEqual(partial);
      }),
      { numRuns: 200 },
    );
  });
});

describe('configFromEnv', () => {
  it('maps CIPHERML_<KEY> variables, parsing values by type', () => {
    expect(
      configFromEnv({
        CIPHERML_NUM_SERVER_ROUNDS: '5',
        CIPHERML_FRACTION_FIT: '0.25',
        CIPHERML_LEARNING_RATE: '1e-3',
        CIPHERML_KEY_BITS: '3072',
        CIPHERML_STRATEGY: 'paillier',
        CIPHERML_TOKEN: 's3cret',
        CIPHERML_ADDRESS: '[::1]:9000',
        CIPHERML_SEED: ' -7 ',
        CIPHERML_L2: '0',
        PATH: '/usr/bin',
        CIPHERML_VALIDATE_SET: undefined,
      }),
    ).toEqual({ numServerRounds: 5, fractionFit: 0.25, learningRate: 0.001, keyBits: 3072, strategy: 'paillier', token: 's3cret', address: '[::1]:9000', seed: -7, l2: 0 });
    expect(configFromEnv({})).toEqual({});
  });

  it('skips the reserved non-config variables and rejects any other unknown CIPHERML_ variable', () => {
    expect(RESERVED_ENV_VARS).toEqual(['CIPHERML_NATIVE', 'CIPHERML_NATIVE_TIMEOUT_MS', 'CIPHERML_WORKER_TOKEN']);
    expect(configFromEnv({ CIPHERML_NATIVE: '0', CIPHERML_NATIVE_TIMEOUT_MS: '5000', CIPHERML_WORKER_TOKEN: 't' })).toEqual({});
    // Other commands' variables (he, gateway, service, the test suites' server URLs) are not typos.
    expect(configFromEnv({ CIPHERML_HE_KEY: 'k', CIPHERML_TEST_POSTGRES_URL: 'postgres://x', CIPHERML_GATEWAY_KEYS: 'd', CIPHERML_SERVE_PORT: '1' })).toEqual({});
    const e = expectInvalid(() => configFromEnv({ CIPHERML_NUM_ROUNDS: '3' }), 'CIPHERML_NUM_ROUNDS', /not a run-config variable; did you mean CIPHERML_NUM_SERVER_ROUNDS/);
    expect(e.details).toMatchObject({ suggestion: 'CIPHERML_NUM_SERVER_ROUNDS' });
    expectInvalid(() => configFromEnv({ CIPHERML_TOKN: 'x' }), 'CIPHERML_TOKN', /did you mean CIPHERML_TOKEN/);
    expectInvalid(() => configFromEnv({ CIPHERML_NATIVE_TIMEOUT: '1' }), 'CIPHERML_NATIVE_TIMEOUT', /did you mean CIPHERML_NATIVE_TIMEOUT_MS/);
  });

  it('rejects bad values, naming the variable and the key', () => {
    const cases: [string, string, RegExp][] = [
      ['CIPHERML_NUM_SERVER_ROUNDS', 'abc', /expected an integer ≥ 1 for num-server-rounds, got "abc"/],
      ['CIPHERML_NUM_SERVER_ROUNDS', '2.5', /got "2\.5"/],
      ['CIPHERML_NUM_SERVER_ROUNDS', '0', /got 0/],
      ['CIPHERML_NUM_SERVER_ROUNDS', '', /got ""/],
      ['CIPHERML_NUM_SERVER_ROUNDS', '0x10', /got "0x10"/],
      ['CIPHERML_FRACTION_FIT', 'Infinity', /got "Infinity"/],
      ['CIPHERML_FRACTION_FIT', '2', /in \(0, 1\] for fraction-fit, got 2/],
      ['CIPHERML_KEY_BITS', '2000', /one of 1024, 2048, 3072, 4096 for key-bits, got 2000/],
      ['CIPHERML_STRATEGY', 'enclave', /reserved but not available yet/],
      ['CIPHERML_ADDRESS', 'localhost', /not a valid address/],
      ['CIPHERML_RUN_DIR', '', /must not be empty/],
    ];
    for (const [name, value, pattern] of cases) {
      const e = expectInvalid(() => configFromEnv({ [name]: value }), name, pattern);
      expect(e.details).toMatchObject({ source: 'env' });
    }
  });

  it('parses the text of any valid per-key value back to it (property)', () => {
    fc.assert(
      fc.property(partialConfig, (partial) => {
        const env = Object.fromEntries(Object.entries(partial).map(([f, v]) => [envName(kebab(f)), String(v)]));
        expect(configFromEnv(env)).toEqual(partial);
      }),
      { numRuns: 200 },
    );
  });
});

describe('configFromFlags', () => {
  it('accepts kebab-case and camelCase names, strings parsed by type, numbers as they are', () => {
    expect(configFromFlags({ 'num-server-rounds': '5', fractionFit: '0.5', keyBits: 1024, l2: 0, 'tls-ca': 'ca.pem', json: true, config: 'run.toml', other: undefined })).toEqual({
      numServerRounds: 5,
      fractionFit: 0.5,
      keyBits: 1024,
      l2: 0,
      tlsCa: 'ca.pem',
    });
    expect(configFromFlags({ seed: undefined })).toEqual({});
    expect(configFromFlags({ seed: '1', 'seed-x': 'ignored' })).toEqual({ seed: 1 });
    expect(configFromFlags({ 'batch-size': '3', batchSize: 3 })).toEqual({ batchSize: 3 });
  });

  it('rejects bad values, naming the flag', () => {
    expectInvalid(() => configFromFlags({ numServerRounds: 'ten' }), '--num-server-rounds', /expected an integer ≥ 1 for num-server-rounds, got "ten"/);
    expectInvalid(() => configFromFlags({ 'batch-size': 0 }), '--batch-size', /got 0/);
    expectInvalid(() => configFromFlags({ seed: true }), '--seed', /got boolean/);
    expectInvalid(() => configFromFlags({ strategy: 'enclave' }), '--strategy', /not available yet/);
    expectInvalid(() => configFromFlags({ authorityAddress: 'host:99999' }), '--authority-address', /port "99999"/);
    expectInvalid(() => configFromFlags({ 'min-fit-clients': '2', minFitClients: '3' }), '--min-fit-clients', /given twice/);
  });

  it('works with the options runConfigOptions() declares on a commander command', () => {
    const options = runConfigOptions();
    expect(options.map((o) => o.key)).toEqual(SPECS.map((s) => s.key));
    for (const o of options) {
      expect(o.flag).toBe(`--${o.key} <value>`);
      expect(o.description).toContain(envName(o.key));
    }
    expect(options.find((o) => o.key === 'learning-rate')?.description).toMatch(/a number > 0; default 0\.1/);
    const cmd = new Command().exitOverride().option('--json');
    for (const o of options) cmd.option(o.flag, o.description);
    cmd.parse(['--num-server-rounds', '4', '--tls-ca', 'ca.pem', '--l2', '0.5', '--json', '--key-holder', 'authority', '--authority-address', 'auth:7000'], { from: 'user' });
    const config = resolveRunConfig({ flags: configFromFlags(cmd.opts()) });
    expect(config).toMatchObject({ numServerRounds: 4, tlsCa: 'ca.pem', l2: 0.5, keyHolder: 'authority', authorityAddress: 'auth:7000' });
  });
});

describe('resolveRunConfig', () => {
  it('applies precedence defaults < file < env < flags', () => {
    const file = parseRunConfigToml('num-server-rounds = 10\nbatch-size = 8\nlearning-rate = 0.2\nseed = 1\n');
    const env = configFromEnv({ CIPHERML_NUM_SERVER_ROUNDS: '20', CIPHERML_BATCH_SIZE: '16' });
    const flags = configFromFlags({ numServerRounds: '30' });
    const config = resolveRunConfig({ file, env, flags });
    expect(config).toMatchObject({ numServerRounds: 30, batchSize: 16, learningRate: 0.2, seed: 1, localEpochs: 1 });
  });

  it('takes each value from the highest layer that sets it (property)', () => {
    const layer = fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined });
    fc.assert(
      fc.property(layer, layer, layer, (f, e, g) => {
        const part = (v: number | undefined) => (v === undefined ? {} : { numServerRounds: v });
        expect(resolveRunConfig({ file: part(f), env: part(e), flags: part(g) }).numServerRounds).toBe(g ?? e ?? f ?? 30);
      }),
    );
  });

  it('checks cross-field rules, blaming the key the highest layer set', () => {
    const e1 = expectInvalid(() => resolveRunConfig({ flags: { minFitClients: 3 } }), 'min-fit-clients', /min-available-clients = 2 \(default\) is below min-fit-clients = 3 \(from flags\)/);
    expect(e1.details).toMatchObject({ 'min-fit-clients': { value: 3, source: 'flags' } });
    expectInvalid(() => resolveRunConfig({ file: { minFitClients: 3 }, env: { minAvailableClients: 2 } }), 'min-available-clients', /below/);
    expect(resolveRunConfig({ file: { minFitClients: 3, minAvailableClients: 5 } }).minAvailableClients).toBe(5);

    expectInvalid(() => resolveRunConfig({ file: { packingFractionalBits: 40 } }), 'packing-fractional-bits', /= 55 exceeds 52/);
    expectInvalid(() => resolveRunConfig({ env: { packingIntegerBits: 40 } }), 'packing-integer-bits', /exceeds 52/);
    expect(resolveRunConfig({ file: { packingFractionalBits: 40, packingIntegerBits: 12 } }).packingIntegerBits).toBe(12);
    expectInvalid(() => resolveRunConfig({ file: { minAvailableClients: 10, minFitClients: 10, packingMaxContributions: 8 } }), 'packing-max-contributions', /packing-max-contributions = 8 \(from file\) is below min-available-clients = 10/);
    expect(packingFor(resolveRunConfig({ file: { minAvailableClients: 10, packingMaxContributions: 16 } })).maxContributions).toBe(16);
    expect(packingFor(resolveRunConfig({ file: { minAvailableClients: 10 } })).maxContributions).toBe(1000);

    for (const keyHolder of ['authority', 'clients'] as const) {
      expectInvalid(() => resolveRunConfig({ file: { strategy: 'paillier', keyHolder } }), 'authority-address', new RegExp(`is required when key-holder = "${keyHolder}"`));
      expect(resolveRunConfig({ file: { keyHolder, authorityAddress: '10.0.0.2:9092' } }).keyHolder).toBe(keyHolder);
    }

    expectInvalid(() => resolveRunConfig({ file: { tlsCert: 'server.pem' } }), 'tls-key', /is required with tls-cert = "server\.pem"/);
    expectInvalid(() => resolveRunConfig({ env: { tlsKey: 'server.key' } }), 'tls-cert', /is required with tls-key/);
    expect(resolveRunConfig({ file: { tlsCert: 'c.pem', tlsKey: 'k.pem' } }).tlsKey).toBe('k.pem');
  });

  it('re-checks programmatic values and rejects unknown fields', () => {
    const bad = { numServerRounds: -1 } as Partial<RunConfig>;
    expectInvalid(() => resolveRunConfig({ env: bad }), 'num-server-rounds', /got -1 \(from env\)/);
    expectInvalid(() => resolveRunConfig({ file: { numRounds: 3 } as Partial<RunConfig> }), 'numRounds', /did you mean "numServerRounds"/);
    expectInvalid(() => validateRunConfig({ ...DEFAULT_RUN_CONFIG, strategy: 'enclave' as 'plain' }), 'strategy', /not available yet/);
  });
});

describe('loadRunConfig and the example files', () => {
  it('parses and resolves examples/homo-lr/run.toml and run-paillier.toml', async () => {
    const plain = await loadRunConfig({ path: 'examples/homo-lr/run.toml' });
    expect(plain).toMatchObject({ strategy: 'plain', validateSet: 'examples/data/breast_homo_test.csv', label: 'y', minFitClients: 2 });
    const paillier = await loadRunConfig({ path: 'examples/homo-lr/run-paillier.toml' });
    expect(paillier).toMatchObject({ strategy: 'paillier', keyHolder: 'server', keyBits: 2048 });
    const secagg = await loadRunConfig({ path: 'examples/homo-lr/run-secagg.toml' });
    expect(secagg).toMatchObject({ strategy: 'secagg', secureAggregation: 'pw', minFitClients: 4, cipherTimeWindow: 20_000 });
    for (const path of ['examples/homo-lr/run.toml', 'examples/homo-lr/run-paillier.toml', 'examples/homo-lr/run-secagg.toml']) {
      expect(Object.keys(parseRunConfigToml(await readFile(path, 'utf8'), path)).length).toBeGreaterThan(5);
    }
  });

  it('layers the file, env and flags', async () => {
    const config = await loadRunConfig({
      path: 'examples/homo-lr/run-paillier.toml',
      env: { CIPHERML_NUM_SERVER_ROUNDS: '3', CIPHERML_KEY_BITS: '1024', HOME: '/root' },
      flags: { numServerRounds: '2', json: true },
    });
    expect(config).toMatchObject({ numServerRounds: 2, keyBits: 1024, strategy: 'paillier' });
    expect(await loadRunConfig()).toEqual(DEFAULT_RUN_CONFIG);
  });

  it('names the file in errors', async () => {
    expect(await codeOfAsync(() => loadRunConfig({ path: 'examples/homo-lr/missing.toml' }))).toBe('CIPHERML_E_IO');
    await expect(loadRunConfig({ path: 'examples/homo-lr/run.toml', env: { CIPHERML_SEED: 'x' } })).rejects.toMatchObject({ code: 'CIPHERML_E_CONFIG_INVALID', param: 'CIPHERML_SEED' });
  });
});

describe('describeRunConfig', () => {
  it('gives a kebab-case view in schema order with the token redacted', () => {
    const config = resolveRunConfig({ env: configFromEnv({ CIPHERML_TOKEN: 'hunter2-very-secret' }) });
    const view = describeRunConfig(config);
    expect(Object.keys(view)).toEqual(SPECS.map((s) => s.key));
    expect(view['token']).toBe('***');
    expect(view['num-server-rounds']).toBe(30);
    expect(JSON.stringify(view)).not.toContain('hunter2');
    expect(describeRunConfig(DEFAULT_RUN_CONFIG)['token']).toBe('');
  });

  it('never echoes a token in error messages', () => {
    const e = expectInvalid(() => parseRunConfigToml('token = 987654321'), 'token');
    expect(e.message).not.toContain('987654321');
    expect(JSON.stringify(e.details)).not.toContain('987654321');
  });
});
