import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { assertOneOf } from '../core/guards.ts';
import { CipherMLError } from '../core/errors.ts';
import { readFileTyped } from '../core/io.ts';
import {
  DEFAULT_POLICY,
  loadPolicy,
  parseCertificateFile,
  parseDcapCollateralJson,
  SIMULATION_LABEL,
  verifyReport,
  type AttestationEvidence,
  type AttestationResult,
} from '../attest/index.ts';

const KINDS = ['sgx-dcap', 'tdx', 'sev-snp', 'nitro', 'simulation'] as const;

/** Parses --at: an ISO 8601 time with a time zone. */
export function parseAtOption(value: string | undefined): Date {
  if (value === undefined) return new Date();
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) || Number.isNaN(d.getTime())) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `"${value}" is not an ISO 8601 time with a zone, e.g. 2025-07-19T10:00:00Z`, { param: '--at' });
  }
  return d;
}

/** The human summary of a verified document: one field per line, simulation labelled on each. */
export function formatAttestation(r: AttestationResult, policySource: string): string {
  const tag = r.simulation ? ` (${SIMULATION_LABEL})` : '';
  const lines = [
    `kind:              ${r.kind}${tag}`,
    `isolation:         ${r.isolation}`,
    `measurement:       ${r.measurement}${tag}`,
    `report data:       ${r.reportData === '' ? '(none)' : r.reportData}${tag}`,
    `debug:             ${r.debug}${tag}`,
    `security versions: ${Object.entries(r.securityVersions).map(([k, v]) => `${k}=${v}`).join(' ') || '(none)'}${tag}`,
    `TCB status:        ${r.tcbStatus}${r.advisoryIds.length > 0 ? ` (${r.advisoryIds.join(', ')})` : ''}${tag}`,
    ...Object.entries(r.fields).map(([k, v]) => `  ${k}: ${String(v)}${tag}`),
    `checks passed:     ${r.checks.join(', ')}${tag}`,
    `verdict:           VERIFIED under ${policySource} at ${r.at}${tag}`,
  ];
  return lines.join('\n');
}

/** `cipherml attest …` */
export function registerAttestCommands(program: Command): void {
  const a = program.command('attest').description('verify TEE attestation documents (Intel SGX DCAP, Intel TDX, AMD SEV-SNP, AWS Nitro) against pinned vendor roots and a policy');
  a.command('verify')
    .description('verify FILE; exit 0 only when it verifies under the policy at the given time')
    .argument('<file>', 'the attestation document (quote, report or COSE document), raw bytes')
    .requiredOption('--kind <kind>', `document kind: ${KINDS.join(' | ')}`)
    .option('--at <iso-time>', 'verification time (default: now); for audits of old documents')
    .option('--policy <file>', 'policy file (.toml or .json); default: the strict built-in policy')
    .option('--collateral <file>', 'Intel collateral JSON (tcb_info, qe_identity, CRLs; sgx-dcap and tdx)')
    .option('--vek <file>', 'the VCEK or VLEK certificate, DER or PEM (sev-snp)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, o: { kind: string; at?: string; policy?: string; collateral?: string; vek?: string; json?: boolean }) => {
      assertOneOf(o.kind, '--kind', KINDS);
      const kind = o.kind;
      const at = parseAtOption(o.at);
      const policy = o.policy === undefined ? DEFAULT_POLICY : await loadPolicy(o.policy, '--policy');
      // Every supported document is well under 64 KiB; refuse a huge file before reading it.
      const size = await stat(file).then((s) => s.size, () => 0);
      if (size > 1024 * 1024) throw new CipherMLError('CIPHERML_E_ATTESTATION_MALFORMED', `${file} is ${size} bytes; no attestation document is larger than 1 MiB`, { param: 'FILE' });
      const document = await readFileTyped(file, 'FILE');
      if (o.collateral !== undefined && kind !== 'sgx-dcap' && kind !== 'tdx') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--collateral applies to sgx-dcap and tdx, not ${kind}`, { param: '--collateral' });
      if (o.vek !== undefined && kind !== 'sev-snp') throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--vek applies to sev-snp, not ${kind}`, { param: '--vek' });
      let evidence: AttestationEvidence = { kind, document };
      if (o.collateral !== undefined) {
        const text = Buffer.from(await readFileTyped(o.collateral, '--collateral')).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (e) {
          throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${o.collateral} is not JSON`, { param: '--collateral', cause: e });
        }
        evidence = { ...evidence, collateral: parseDcapCollateralJson(json, '--collateral') };
      }
      if (o.vek !== undefined) evidence = { ...evidence, vek: parseCertificateFile(await readFileTyped(o.vek, '--vek'), '--vek') };
      const r = verifyReport(evidence, policy, { at });
      const source = o.policy ?? 'the default policy';
      process.stdout.write(o.json === true ? `${JSON.stringify({ verdict: 'verified', policy: source, ...r })}\n` : `${formatAttestation(r, source)}\n`);
    });
}
