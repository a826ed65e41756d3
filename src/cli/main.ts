import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { isCipherMLError, type CipherMLError } from '../core/errors.ts';

/**
 * The `cipherml` command line: a thin shell over the library. Each command parses its options,
 * calls one library function and prints either a human summary or, with `--json`, one JSON object
 * on stdout. Progress goes to stderr. Errors print their stable code; the exit status is 1 for a
 * cipherml error and 2 for a usage error.
 *
 * Start-up stays small: a command's module (and everything it imports) is loaded only when that
 * command runs; `--help` and `--version` load none of them.
 */

/** A module of commands: the top-level names it registers (with their one-line help) and its loader. */
export interface CommandModule {
  /** Top-level command names → description shown by `cipherml --help`. */
  readonly commands: Readonly<Record<string, string>>;
  /** Imports the module and returns its `register…Commands(program)` function. */
  readonly load: () => Promise<(program: Command) => void>;
}

/**
 * Every command module, one line each. To add a command: put it in its own file in `src/cli/`
 * exporting `registerXCommands(program)`, and add one line here.
 */
export const COMMAND_MODULES: readonly CommandModule[] = [
  { commands: { demo: 'run a bundled end-to-end demo' }, load: async () => (await import('./demo.ts')).registerDemoCommands },
  {
    commands: { paillier: 'Paillier keys, packed encrypted vectors on files, threshold keys (trusted dealer)' },
    load: async () => {
      const [p, t] = await Promise.all([import('./paillier.ts'), import('./threshold.ts')]);
      return (program) => {
        p.registerPaillierCommands(program);
        t.registerThresholdKeygenCommand(program);
      };
    },
  },
  { commands: { 'key-holder': 'threshold Paillier key holder: decryption shares of signed aggregates only' }, load: async () => (await import('./threshold.ts')).registerKeyHolderCommand },
  { commands: { identity: 'party identities (Ed25519 signing keys) and rosters' }, load: async () => (await import('./identity.ts')).registerIdentityCommands },
  { commands: { fl: 'federated neural networks on MNIST / Fashion-MNIST and ONNX export of the trained model' }, load: async () => (await import('./fl-nn.ts')).registerFlNnCommands },
  { commands: { attest: 'verify TEE attestation documents (SGX DCAP, TDX, SEV-SNP, Nitro)' }, load: async () => (await import('./attest.ts')).registerAttestCommands },
  { commands: { enclave: 'the attested aggregator\'s measurement and simulation reports' }, load: async () => (await import('./enclave.ts')).registerEnclaveCommands },
  { commands: { server: 'federated parameter server (workers connect to it)', worker: 'federated worker (data owner): trains on its CSV and sends updates to the server', 'key-authority': 'key authority (model owner): holds the Paillier key pair', simulate: 'all parties of a federated run in one process', token: 'print the token of one party, derived from the run secret' }, load: async () => (await import('./fl.ts')).registerFlCommands },
  { commands: { run: 'run the federated app of APP_DIR/cipherml.toml in one process (as flwr run)' }, load: async () => (await import('./run.ts')).registerRunCommand },
  { commands: { he: 'encrypted ONNX inference with CKKS (HE-MAN workflow: keyparams, keygen, encrypt, inference, decrypt)' }, load: async () => (await import('./he.ts')).registerHeCommands },
  { commands: { serve: 'run the encrypted training service (REST under /api/v1, docs at /docs)' }, load: async () => (await import('./serve.ts')).registerServeCommands },
  { commands: { gateway: 'trusted gateway of the encrypted training service (holds the secret key)' }, load: async () => (await import('./gateway.ts')).registerGatewayCommands },
  { commands: { bench: 'benchmarks against a named baseline, run in one process' }, load: async () => (await import('./bench.ts')).registerBenchCommands },
];

function version(): string {
  // package.json sits two folders up from src/cli/ in a checkout and three up from dist/src/cli/.
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pj = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pj.name === 'cipherml' && typeof pj.version === 'string') return pj.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}

/** The command name argv asks for (skipping options and `help`), or undefined. */
function requestedCommand(args: readonly string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/**
 * Builds the program with the modules argv needs: the one whose command is asked for, or, for
 * `--help` and unknown commands, every command as a one-line stub (exported for tests).
 *
 * @example
 * ```ts
 * const program = await buildProgram(['node', 'cipherml', 'paillier', 'keygen', '--help']);
 * ```
 */
export async function buildProgram(argv: readonly string[] = [], all = false): Promise<Command> {
  const program = new Command('cipherml')
    .description('Privacy-preserving machine learning: Paillier-aggregated federated learning, secure aggregation, encrypted inference and training.')
    .version(version(), '-V, --version')
    .option('--debug', 'on errors, also print the stack trace and causes')
    .showHelpAfterError()
    .exitOverride();
  const name = requestedCommand(argv.slice(2));
  const wanted = all ? COMMAND_MODULES : COMMAND_MODULES.filter((m) => name !== undefined && Object.hasOwn(m.commands, name));
  if (wanted.length > 0) {
    for (const m of wanted) (await m.load())(program);
  } else {
    for (const m of COMMAND_MODULES) for (const [cmd, description] of Object.entries(m.commands)) program.command(cmd).description(description);
  }
  return program;
}

/**
 * Runs the CLI on argv and returns the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await main(['node', 'cipherml', 'demo', 'paillier', '--json']);
 * ```
 */
export async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json');
  const debug = argv.includes('--debug');
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv as string[]);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    const err: CipherMLError = isCipherMLError(e) ? e : (await import('./failure.ts')).describeFailure(e, requestedCommand(argv.slice(2)), argv);
    if (json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() })}\n`);
    process.stderr.write(`error: ${err.message}\n`);
    if (debug) process.stderr.write(`${stackChain(e)}\n`);
    else if (!isCipherMLError(e) && err.code === 'CIPHERML_E_INTERNAL') process.stderr.write('(run again with --debug for the stack trace)\n');
    return 1;
  }
}

function stackChain(e: unknown): string {
  const lines: string[] = [];
  for (let cur: unknown = e, depth = 0; cur !== undefined && depth < 8; depth++) {
    lines.push(depth === 0 ? '' : 'caused by:', cur instanceof Error ? (cur.stack ?? cur.message) : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return lines.filter((l) => l !== '').join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // Exit when the command is done, even if a peer left a socket or timer open: a CLI run always ends.
  process.exit(await main(process.argv));
}
