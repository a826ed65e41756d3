import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseTomlBounded } from '../core/bounded-toml.ts';
import { CipherMLError } from '../core/errors.ts';
import { loadIdentity } from '../core/identity.ts';
import { writeFileSafely } from '../core/io.ts';
import { packageRoot } from '../core/paths.ts';
import { createSimulationReport, measureBundle, SIMULATION_LABEL } from '../attest/index.ts';

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
