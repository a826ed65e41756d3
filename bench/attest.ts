import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CipherMLError } from '../src/core/errors.ts';
import { coseSign1SigStructure, createSimulationReport, DEFAULT_POLICY, parseDcapQuote, parseNitroDocument, parseSnpReport, SIMULATION_LABEL, verifyReport, type AttestationEvidence, type AttestationPolicy } from '../src/attest/index.ts';
import { generateIdentity, publicIdentity, verifyMessage } from '../src/core/identity.ts';
import type { Vector } from '../test/attest/vectors.ts';
import { formatRoundOverhead, runRoundOverhead, type RoundOverheadResult } from './attest-round.ts';

/** Where the real documents and their vectors live: a source checkout's test/attest (not shipped in the npm package). */
const ATTEST_TESTS = join(import.meta.dirname, '..', 'test', 'attest');

/**
 * Loads the vectors of test/attest by path at run time (not a static import, so this module
 * loads wherever bench/ does), with a typed error naming what is missing.
 */
async function loadVectors(): Promise<readonly Vector[]> {
  const file = join(ATTEST_TESTS, 'vectors.ts');
  if (!existsSync(file) || !existsSync(join(ATTEST_TESTS, 'fixtures'))) {
    throw new CipherMLError('CIPHERML_E_DEPENDENCY_MISSING', `bench attest verifies the real attestation documents of test/attest/fixtures, which are not at ${ATTEST_TESTS}: run it from a cipherml source checkout (the npm package ships neither bench/ nor test/)`, { param: 'bench attest' });
  }
  return ((await import(pathToFileURL(file).href)) as { VECTORS: readonly Vector[] }).VECTORS;
}

/**
 * Attestation verification benchmark: for one real document of each kind (test/attest/fixtures),
 * the warm time of a full verification (parse, certificate chain to the pinned root, body
 * signature, collateral and TCB evaluation where shipped, policy) against the named baseline of
 * the same run: the bare body-signature check alone (one ECDSA verify with the key already
 * decoded), i.e. the least any verifier must do. The cold first verification is reported too.
 * Only the verifier's work is timed; producing the documents happened on the vendors' hardware.
 */

export interface AttestBenchOptions {
  readonly iterations?: number;
  /** Federated rounds of the round-overhead part (0: skip it). */
  readonly rounds?: number;
  readonly keyBits?: 1024 | 2048 | 3072;
  readonly onProgress?: (line: string) => void;
}

export interface AttestBenchRow {
  readonly kind: string;
  readonly document: string;
  /** First verification in this process, ms. */
  readonly coldMs: number;
  /** Median warm full verification, ms. */
  readonly warmMs: number;
  /** Median bare body-signature verification (baseline), ms. */
  readonly signatureMs: number;
  readonly ratio: number;
  readonly targetMs: number;
  readonly met: boolean;
}

export interface AttestBenchResult {
  readonly iterations: number;
  readonly baseline: string;
  readonly rows: readonly AttestBenchRow[];
  /** The attested aggregator's round against the plain Paillier server-key round, same run. */
  readonly roundOverhead: RoundOverheadResult | null;
}

const DOCS = ['sgx dcap-qvl', 'tdx dcap-qvl', 'snp oak genoa', 'nitro evervault beta'] as const;
const TARGET_MS = 20;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(f: () => unknown): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

/** The body-signature check alone: (hash, data, key, P1363 signature). */
function bareSignature(e: AttestationEvidence): () => boolean {
  const d = e.document;
  if (e.kind === 'sgx-dcap' || e.kind === 'tdx') {
    const q = parseDcapQuote(d);
    const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: Buffer.from(q.attestationKey.subarray(0, 32)).toString('base64url'), y: Buffer.from(q.attestationKey.subarray(32)).toString('base64url') }, format: 'jwk' });
    return () => cryptoVerify('sha256', q.signedRegion, { key, dsaEncoding: 'ieee-p1363' }, q.signature);
  }
  if (e.kind === 'sev-snp') {
    const r = parseSnpReport(d);
    const sig = Buffer.alloc(96);
    for (let k = 0; k < 48; k++) {
      sig[k] = r.signature[47 - k]!;
      sig[48 + k] = r.signature[72 + 47 - k]!;
    }
    const key: KeyObject = e.vek!.publicKey;
    return () => cryptoVerify('sha384', d.subarray(0, 0x2a0), { key, dsaEncoding: 'ieee-p1363' }, sig);
  }
  const n = parseNitroDocument(d);
  const key = n.certificate.publicKey;
  return () => cryptoVerify('sha384', coseSign1SigStructure(n.protectedHeader, n.payload), { key, dsaEncoding: 'ieee-p1363' }, n.signature);
}

/**
 * Runs the benchmark.
 *
 * @example
 * ```ts
 * const r = await runAttestBench({ iterations: 50 });
 * console.log(formatAttestBench(r));
 * ```
 */
export async function runAttestBench(options: AttestBenchOptions = {}): Promise<AttestBenchResult> {
  const iterations = options.iterations ?? 50;
  const rows: AttestBenchRow[] = [];
  const VECTORS = await loadVectors();
  for (const name of DOCS) {
    const v = VECTORS.find((x) => x.name === name)!;
    const document = readFileSync(join(ATTEST_TESTS, 'fixtures', v.file));
    const evidence = v.evidence(document);
    const policy: AttestationPolicy = v.policy;
    const at = new Date(v.at);
    const coldMs = time(() => verifyReport(evidence, policy, { at }));
    const sig = bareSignature(evidence);
    if (!sig()) throw new Error(`baseline signature check failed for ${name}`);
    const full: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < iterations; i++) {
      full.push(time(() => verifyReport(evidence, policy, { at })));
      bare.push(time(sig));
    }
    const warmMs = median(full);
    const signatureMs = median(bare);
    rows.push({ kind: v.kind, document: v.file, coldMs, warmMs, signatureMs, ratio: warmMs / signatureMs, targetMs: TARGET_MS, met: warmMs <= TARGET_MS });
    options.onProgress?.(`[bench attest] ${v.kind}: warm ${warmMs.toFixed(2)} ms, bare signature ${signatureMs.toFixed(3)} ms`);
    await new Promise((r) => setTimeout(r, 0));
  }
  {
    // Simulation report (software, no hardware isolation): one Ed25519 signature, made here.
    const signer = generateIdentity('aggregator', 'bench');
    const document = createSimulationReport(signer, { measurement: 'ab'.repeat(48), reportData: new Uint8Array(64) });
    const policy: AttestationPolicy = { ...DEFAULT_POLICY, allowSimulation: true, simulationSigners: [signer.fingerprint] };
    const at = new Date();
    const coldMs = time(() => verifyReport({ kind: 'simulation', document }, policy, { at }));
    const outer = JSON.parse(Buffer.from(document).toString('utf8')) as { report: string; signature: string };
    const payload = Buffer.from(outer.report, 'base64');
    const signature = Buffer.from(outer.signature, 'base64');
    const pub = publicIdentity(signer);
    const full: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < iterations; i++) {
      full.push(time(() => verifyReport({ kind: 'simulation', document }, policy, { at })));
      bare.push(time(() => verifyMessage(pub, 'attest/simulation-report/v1', payload, signature)));
    }
    const warmMs = median(full);
    const signatureMs = median(bare);
    rows.push({ kind: 'simulation', document: `(generated; ${SIMULATION_LABEL})`, coldMs, warmMs, signatureMs, ratio: warmMs / signatureMs, targetMs: TARGET_MS, met: warmMs <= TARGET_MS });
  }
  const rounds = options.rounds ?? 6;
  const roundOverhead = rounds === 0 ? null : await runRoundOverhead({ rounds, ...(options.keyBits === undefined ? {} : { keyBits: options.keyBits }), ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }) });
  return { iterations, baseline: 'bare body-signature check (one ECDSA or Ed25519 verify, key pre-decoded)', rows, roundOverhead };
}

/** The table. */
export function formatAttestBench(r: AttestBenchResult): string {
  const head = `${'kind'.padEnd(11)}${'cold ms'.padStart(10)}${'warm ms'.padStart(10)}${'sig ms'.padStart(10)}${'ratio'.padStart(8)}  target`;
  return [
    `Attestation verification, median of ${r.iterations} warm runs; baseline: ${r.baseline}`,
    head,
    ...r.rows.map((x) => `${x.kind.padEnd(11)}${x.coldMs.toFixed(2).padStart(10)}${x.warmMs.toFixed(2).padStart(10)}${x.signatureMs.toFixed(3).padStart(10)}${(x.ratio.toFixed(1) + '×').padStart(8)}  ≤ ${x.targetMs} ms: ${x.met ? 'met' : 'MISSED'}`),
    ...(r.roundOverhead === null ? [] : ['', formatRoundOverhead(r.roundOverhead)]),
  ].join('\n');
}
