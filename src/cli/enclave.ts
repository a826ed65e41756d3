import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { parseTomlBounded } from '../core/bounded-toml.ts';
import type { Transport } from '@connectrpc/connect';
import { CipherMLError } from '../core/errors.ts';
import { loadIdentity } from '../core/identity.ts';
import { writeFileSafely } from '../core/io.ts';
import { packageRoot } from '../core/paths.ts';
import { createSealingSecret, createSimulationReport, loadPolicy, loadSealingSecret, measureBundle, SIMULATION_LABEL } from '../attest/index.ts';
import { logRegEvaluator } from '../fl/apps/logreg.ts';
import { measureAggregator } from '../enclave/measure.ts';
import { ATTESTATION_PATH, EnclaveAggregator, assertTeeAvailable, attestAggregator, attestedKey, attestedTransport } from '../enclave/index.ts';
import type { RunConfig } from '../fl/config.ts';
import { describeServerEvent, summaryJson } from '../fl/describe.ts';
import type { JoinResponse } from '../fl/gen/cipherml/fl/v1/fl_pb.ts';
import type { PartyTrust } from '../fl/identity-auth.ts';
import type { NamedTensor } from '../fl/protocol.ts';
import { expandRunDir, packingFor, serverSettings } from '../fl/run.ts';
import type { FlServerOptions, RunSummary, ServerSettings } from '../fl/server.ts';

async function readConfig(path: string | undefined): Promise<unknown> {
  if (path === undefined) return {};
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_IO', `cannot read ${path}`, { param: '--config', cause: e });
  }
  try {
    return path.endsWith('.toml') ? parseTomlBounded(text, path, '--config') : JSON.parse(text);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `${path} is not valid ${path.endsWith('.toml') ? 'TOML' : 'JSON'}`, { param: '--config', cause: e });
  }
}

function hexOption(v: string, flag: string, min: number, max: number): string {
  const h = v.toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]*$/.test(h) || h.length % 2 !== 0 || h.length < 2 * min || h.length > 2 * max) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `must be ${min === max ? min : `${min} to ${max}`} bytes of hex, got "${v}"`, { param: flag });
  }
  return h;
}

/** `cipherml enclave …` */
export function registerEnclaveCommands(program: Command): void {
  const e = program.command('enclave').description('the attested aggregator\'s identity: measurement of what runs, and simulation reports for machines without a TEE');
  e.command('measure')
    .description('reproducible digest (SHA-384) of the aggregator bundle, the Node binary and the security configuration')
    .option('--bundle <dir>', 'the bundle to measure (default: dist/ if built, else src/ of this installation)')
    .option('--config <file>', 'security-relevant configuration (.json or .toml), measured as canonical JSON')
    .option('--node <path>', 'the Node binary that will run it (default: this one)')
    .option('--manifest', 'also print the manifest (one line per file)')
    .option('--json', 'print one JSON object')
    .action(async (o: { bundle?: string; config?: string; node?: string; manifest?: boolean; json?: boolean }) => {
      const root = packageRoot();
      const bundle = o.bundle ?? (existsSync(join(root, 'dist', 'src')) ? join(root, 'dist', 'src') : join(root, 'src'));
      const m = await measureBundle({ bundle, config: await readConfig(o.config), ...(o.node === undefined ? {} : { node: o.node }), onProgress: (l) => process.stderr.write(`${l}\n`) });
      if (o.json === true) {
        const { manifest, ...rest } = m;
        process.stdout.write(`${JSON.stringify({ bundle, ...rest, ...(o.manifest === true ? { manifest } : {}) })}\n`);
      } else {
        process.stdout.write(`${o.manifest === true ? m.manifest : ''}measurement ${m.measurement}\nbundle ${bundle} (${m.files} files, sha256 ${m.bundleDigest})\nnode ${m.nodeDigest} ${m.nodeVersion}\nconfig ${m.configDigest}\n`);
      }
    });
  e.command('simulate-report')
    .description(`write a simulation attestation report signed by an identity (${SIMULATION_LABEL})`)
    .requiredOption('--identity <file>', 'the aggregator identity file (secret, 0600)')
    .requiredOption('--measurement <hex>', 'the measurement (cipherml enclave measure)')
    .requiredOption('--report-data <hex>', 'report data, up to 64 bytes (zero-padded)')
    .requiredOption('-o, --out <file>', 'output file')
    .option('--overwrite', 'replace an existing file')
    .option('--json', 'print one JSON object')
    .action(async (o: { identity: string; measurement: string; reportData: string; out: string; overwrite?: boolean; json?: boolean }) => {
      const measurement = hexOption(o.measurement, '--measurement', 32, 64);
      const rd = Buffer.alloc(64);
      Buffer.from(hexOption(o.reportData, '--report-data', 0, 64), 'hex').copy(rd);
      const id = await loadIdentity(o.identity, '--identity');
      await writeFileSafely(o.out, createSimulationReport(id, { measurement, reportData: rd }), { overwrite: o.overwrite === true });
      const summary = { out: o.out, isolation: SIMULATION_LABEL, signer: id.fingerprint, measurement };
      process.stdout.write(o.json === true ? `${JSON.stringify(summary)}\n` : `wrote ${o.out} (${SIMULATION_LABEL}); signer ${id.fingerprint}; measurement ${measurement} (${SIMULATION_LABEL})\n`);
    });
}

/** The prefix of every line a simulation-mode party prints. */
const SIM_PREFIX = `[${SIMULATION_LABEL}]`;

/** Options of {@link runEnclaveServer} (from `cipherml server --tee …`). */
export interface EnclaveServerFlags {
  readonly tee: string;
  readonly sealingSecret?: string;
  readonly json?: boolean;
}

/**
 * What an app other than logistic regression puts inside the enclave (`cipherml fl nn-server
 * --tee`): its evaluation, its initial model, server settings beyond the run config, and its
 * summary line. Without it the enclave evaluates the logistic regression on validate-set.
 */
export interface EnclaveServerApp {
  readonly evaluate?: FlServerOptions['evaluate'];
  readonly initialModel?: readonly NamedTensor[];
  readonly settings?: Partial<ServerSettings>;
  readonly summary?: (summary: RunSummary) => Record<string, unknown>;
}

/**
 * What `--tee` needs of the run config and the party's trust, checked before any data is read:
 * identity mode (the enclave decrypts only aggregates of contributions signed by roster workers and
 * signs its attestation with its identity) and strategy "paillier".
 *
 * @example
 * ```ts
 * assertEnclaveConfig(config, trust); // throws CIPHERML_E_CONFIG_INVALID naming identity or strategy
 * ```
 */
export function assertEnclaveConfig(config: Pick<RunConfig, 'strategy'>, trust: PartyTrust | null): asserts trust is PartyTrust {
  if (trust === null) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', '--tee needs identity mode (identity and roster): the enclave decrypts only aggregates of signed contributions from roster workers, and signs its attestation with its identity', { param: 'identity' });
  if (config.strategy !== 'paillier') throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `--tee runs Paillier FedAvg with the key inside the enclave; strategy is "${config.strategy}" (set strategy = "paillier")`, { param: 'strategy' });
}

/**
 * `cipherml server --tee simulation`: the attested aggregator (src/enclave) for a run config.
 * Hardware kinds are refused here (CIPHERML_E_TEE_UNAVAILABLE) before anything else happens.
 *
 * @example
 * ```ts
 * await runEnclaveServer(config, { tee: 'simulation' }, trust);
 * ```
 */
export async function runEnclaveServer(config: RunConfig, flags: EnclaveServerFlags, trust: PartyTrust | null, app?: EnclaveServerApp): Promise<void> {
  assertTeeAvailable(flags.tee);
  assertEnclaveConfig(config, trust);
  const runDir = expandRunDir(config.runDir, config);
  const print = (line: string, obj: object): void => {
    if (flags.json === true) process.stdout.write(`${JSON.stringify({ ...obj, isolation: SIMULATION_LABEL })}\n`);
    else process.stderr.write(`${SIM_PREFIX} ${line}\n`);
  };
  const secretPath = flags.sealingSecret ?? join(runDir, 'simulation.sealing-secret');
  let secret: Uint8Array;
  if (existsSync(secretPath)) secret = await loadSealingSecret(secretPath, '--sealing-secret');
  else {
    await mkdir(dirname(secretPath), { recursive: true });
    secret = await createSealingSecret(secretPath);
    print(`created the simulation sealing secret ${secretPath} (readable by this machine's operator; a TEE would use its platform sealing key)`, { event: 'sealing-secret', path: secretPath });
  }
  const packing = packingFor(config);
  const m = await measureAggregator(flags.tee, config);
  const bundle = m.bundle;
  const evaluate = app !== undefined ? app.evaluate : config.validateSet === '' ? undefined : await logRegEvaluator(config.validateSet, config.label);
  print(`measurement ${m.measurement} (bundle ${bundle}, ${m.files} files)`, { event: 'measurement', measurement: m.measurement, bundle });
  const agg = await EnclaveAggregator.start({
    tee: flags.tee,
    settings: { ...serverSettings(config, app?.settings), runDir },
    trust,
    packing,
    keyBits: config.keyBits,
    measurement: m.measurement,
    sealingSecret: secret,
    ...(evaluate === undefined ? {} : { evaluate }),
    ...(app?.initialModel === undefined ? {} : { initialModel: app.initialModel }),
    onEvent: (e) => {
      if (e.type === 'enclave') print(`enclave: ${e.state} secrets for run ${e.runId}; Paillier key ${e.paillierFingerprint}, TLS key sha256 ${e.tlsSpkiSha256.slice(0, 16)}…; attestation at ${ATTESTATION_PATH}`, { event: 'enclave', ...e });
      else print(describeServerEvent(e), { event: e.type, ...(e.type === 'finished' ? {} : e) });
    },
  });
  try {
    const summary = await agg.run();
    const line = { ...(app?.summary === undefined ? summaryJson(summary) : app.summary(summary)), isolation: SIMULATION_LABEL };
    process.stdout.write(flags.json === true ? `${JSON.stringify(line)}\n` : `${JSON.stringify(line, null, 2)}\n`);
  } finally {
    await agg.close(3000);
  }
}

/**
 * `cipherml worker --require-attestation POLICY`: verifies the aggregator before anything is sent
 * and returns the pinned transport and key hook for runWorker.
 *
 * @example
 * ```ts
 * const a = await attestedWorkerSetup('127.0.0.1:9091', 'policy.toml', undefined, 64 << 20, print);
 * await runWorker({ ..., transport: a.transport, attestedKey: a.attestedKey });
 * ```
 */
export async function attestedWorkerSetup(address: string, policyPath: string, runId: string | undefined, maxMessageBytes: number, print: (line: string, obj: object) => void): Promise<{ transport: Transport; attestedKey: (reply: JoinResponse) => string; label: string; isolation: string }> {
  const policy = await loadPolicy(policyPath, '--require-attestation');
  const a = await attestAggregator(address, policy, runId === undefined ? {} : { runId });
  const r = a.result;
  const label = r?.simulation === true ? `${SIM_PREFIX} ` : '';
  print(`${label}attestation verified: ${r?.kind ?? 'unverified'} document, measurement ${r?.measurement.slice(0, 24) ?? '?'}…, report data binds Paillier key ${a.paillierFingerprint}, this TLS key and run ${a.runId} (${a.isolation})`, { event: 'attestation', kind: r?.kind ?? null, measurement: r?.measurement ?? null, runId: a.runId, paillierFingerprint: a.paillierFingerprint, isolation: a.isolation });
  return { transport: attestedTransport(address, a, maxMessageBytes), attestedKey: attestedKey(a), label, isolation: a.isolation };
}
