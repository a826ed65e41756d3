import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { CipherMLError, isCipherMLError } from '../core/errors.ts';
import { packageRoot } from '../core/paths.ts';
import { registerPaillierCommands } from './paillier.ts';
import { registerDemoCommands } from './demo.ts';
import { registerBenchCommands } from './bench.ts';
import { registerFlCommands } from './fl.ts';
import { registerFlNnCommands } from './fl-nn.ts';
import { registerHeCommands } from './he.ts';
import { registerServeCommands } from './serve.ts';
import { registerGatewayCommands } from './gateway.ts';
import { registerThresholdCommands } from './threshold.ts';
import { registerIdentityCommands } from './identity.ts';
import { registerAttestCommands } from './attest.ts';
import { registerEnclaveCommands } from './enclave.ts';

/**
 * The `cipherml` command line: a thin shell over the library. Each command parses its options,
 * calls one library function and prints either a human summary or, with `--json`, one JSON object
 * on stdout. Progress goes to stderr. Errors print their stable code; the exit status is 1 for a
 * cipherml error and 2 for a usage error.
 */

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** Builds the program (exported for tests). */
export function buildProgram(): Command {
  const program = new Command('cipherml')
    .description('Privacy-preserving machine learning: Paillier-aggregated federated learning, secure aggregation, encrypted inference and training.')
    .version(version(), '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  registerDemoCommands(program);
  registerPaillierCommands(program);
  registerFlCommands(program);
  registerFlNnCommands(program);
  registerHeCommands(program);
  registerServeCommands(program);
  registerGatewayCommands(program);
  registerIdentityCommands(program);
  registerAttestCommands(program);
  registerEnclaveCommands(program);
  registerBenchCommands(program);
  registerThresholdCommands(program);
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
  const program = buildProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv as string[]);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (isCipherMLError(e)) {
      if (json) process.stdout.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
      else process.stderr.write(`error: ${e.message}\n`);
      return 1;
    }
    const wrapped = new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `unexpected failure: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    process.stderr.write(`error: ${wrapped.message}\n${e instanceof Error && e.stack !== undefined ? e.stack : ''}\n`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv);
}
