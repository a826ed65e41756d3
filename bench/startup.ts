import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Start-up time of the CLI and of `import 'cipherml/paillier'`, each the median of `runs` fresh
 * Node processes, against the named baseline of the same run: `node -e 0` (Node's own start-up).
 * Targets (issue 14): `--help` and `--version` ≤ 300 ms, the paillier import ≤ 150 ms.
 */

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');

/** One timed command. */
export interface StartupRow {
  readonly name: string;
  readonly medianMs: number;
  readonly minMs: number;
  readonly targetMs: number | null;
  /** Median minus the baseline's median: what cipherml itself adds. */
  readonly overBaselineMs: number;
}

/** Result of {@link runStartupBench}. */
export interface StartupBenchResult {
  readonly runs: number;
  readonly node: string;
  readonly baseline: { readonly name: string; readonly medianMs: number };
  readonly rows: readonly StartupRow[];
}

async function timeMs(args: readonly string[]): Promise<number> {
  const t = performance.now();
  await run(process.execPath, args as string[], { cwd: root });
  return performance.now() - t;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Runs the start-up benchmark.
 *
 * @example
 * ```ts
 * const r = await runStartupBench({ runs: 10 });
 * console.log(formatStartupBench(r));
 * ```
 */
export async function runStartupBench(o: { runs?: number; onProgress?: (line: string) => void } = {}): Promise<StartupBenchResult> {
  const runs = o.runs ?? 10;
  const cli = join(root, 'bin', 'cipherml.js');
  const cases: { name: string; args: string[]; targetMs: number | null }[] = [
    { name: 'node -e 0 (baseline)', args: ['-e', '0'], targetMs: null },
    { name: 'cipherml --version', args: [cli, '--version'], targetMs: 300 },
    { name: 'cipherml --help', args: [cli, '--help'], targetMs: 300 },
    // What an installed package imports (dist/, after `npm run build`); the TypeScript sources otherwise.
    existsSync(join(root, 'dist', 'src', 'paillier', 'index.js'))
      ? { name: "import 'cipherml/paillier' (dist)", args: ['--input-type=module', '-e', `await import(${JSON.stringify(join(root, 'dist', 'src', 'paillier', 'index.js'))})`], targetMs: 150 }
      : { name: "import 'cipherml/paillier' (src, type stripping)", args: ['--input-type=module', '-e', `await import(${JSON.stringify(join(root, 'src', 'paillier', 'index.ts'))})`], targetMs: 150 },
  ];
  const times = cases.map(() => [] as number[]);
  // Interleaved, so that load on the machine affects every case alike.
  for (let r = 0; r < runs; r++) {
    for (const [i, c] of cases.entries()) times[i]!.push(await timeMs(c.args));
    o.onProgress?.(`startup: run ${r + 1}/${runs}`);
  }
  const base = median(times[0]!);
  return {
    runs,
    node: process.version,
    baseline: { name: 'node -e 0', medianMs: base },
    rows: cases.slice(1).map((c, i) => ({ name: c.name, medianMs: median(times[i + 1]!), minMs: Math.min(...times[i + 1]!), targetMs: c.targetMs, overBaselineMs: median(times[i + 1]!) - base })),
  };
}

/** A table of {@link runStartupBench}'s result. */
export function formatStartupBench(r: StartupBenchResult): string {
  const lines = [`start-up, median of ${r.runs} fresh processes (Node ${r.node}); baseline ${r.baseline.name}: ${r.baseline.medianMs.toFixed(0)} ms`, '', '| command | median ms | min ms | over baseline ms | target ms |', '|---|---:|---:|---:|---:|'];
  for (const row of r.rows) lines.push(`| ${row.name} | ${row.medianMs.toFixed(0)} | ${row.minMs.toFixed(0)} | ${row.overBaselineMs.toFixed(0)} | ${row.targetMs ?? '–'} |`);
  return lines.join('\n');
}
