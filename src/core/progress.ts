/**
 * Progress of long CLI work, in the form that suits where stderr goes:
 * - a terminal: a live bar with count, rate and ETA (cli-progress), redrawn in place;
 * - a file or pipe (logs, CI): plain lines, at most one every few seconds and at the end, never a
 *   carriage return;
 * - `--json`: one JSON object per update on stderr (`{"progress":…,"done":…,"total":…,"rate":…,"etaSeconds":…}`),
 *   so stdout keeps only the command's result.
 * Progress always goes to stderr.
 */

/** Where and how progress is shown. */
export type ProgressMode = 'bar' | 'lines' | 'json' | 'off';

/** A running progress report. */
export interface Progress {
  /** Sets the count done so far, optionally what is being done and the total (when first known). */
  update(done: number, detail?: string, total?: number): void;
  /** Prints a one-off line (above the bar on a terminal). */
  log(text: string): void;
  /** Ends the report (prints the final line in lines mode, clears the bar's line on a terminal). */
  finish(): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** What is measured, e.g. "inference" or "round". */
  readonly label: string;
  /** Total count, or 0 when unknown. */
  readonly total: number;
  /** Unit of the count, e.g. "layers", "rounds". */
  readonly unit?: string;
  /** `--json` was given. */
  readonly json?: boolean;
  /** Force a mode (tests); default from the stream and `json`. */
  readonly mode?: ProgressMode;
  /** Minimum milliseconds between plain lines (default 2000). */
  readonly lineEveryMs?: number;
  /** The stream (default process.stderr). */
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/**
 * The mode for a stream: a bar only on an interactive terminal (not under CI, not TERM=dumb).
 *
 * @example
 * ```ts
 * progressMode(process.stderr, false); // 'bar' in a terminal, 'lines' when redirected
 * ```
 */
export function progressMode(stream: { isTTY?: boolean }, json: boolean, env: Readonly<Record<string, string | undefined>> = process.env): ProgressMode {
  if (json) return 'json';
  if (stream.isTTY === true && env['CI'] === undefined && env['TERM'] !== 'dumb') return 'bar';
  return 'lines';
}

function seconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/**
 * Starts a progress report.
 *
 * @example
 * ```ts
 * const p = createProgress({ label: 'inference', total: 5, unit: 'layers', json: o.json === true });
 * for (let i = 1; i <= 5; i++) { await layer(i); p.update(i, `layer ${i}`); }
 * p.finish();
 * ```
 */
export async function createProgress(options: ProgressOptions): Promise<Progress> {
  const o = { ...options, total: options.total };
  const stream = o.stream ?? process.stderr;
  const mode = o.mode ?? progressMode(stream, o.json === true);
  const unit = o.unit ?? '';
  const start = performance.now();
  const figures = (done: number): { rate: number; eta: number; elapsed: number } => {
    const elapsed = (performance.now() - start) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    return { rate, eta: rate > 0 && o.total > 0 ? (o.total - done) / rate : Number.POSITIVE_INFINITY, elapsed };
  };
  if (mode === 'off') return { update: () => undefined, log: () => undefined, finish: () => undefined };
  if (mode === 'json') {
    let last = 0;
    return {
      update: (done, detail, total) => {
        if (total !== undefined) o.total = total;
        last = done;
        const f = figures(done);
        stream.write(`${JSON.stringify({ progress: o.label, done, total: o.total, unit, rate: Number(f.rate.toFixed(3)), etaSeconds: Number.isFinite(f.eta) ? Math.round(f.eta) : null, ...(detail === undefined ? {} : { detail }) })}\n`);
      },
      log: (text) => stream.write(`${JSON.stringify({ progress: o.label, message: text })}\n`),
      finish: () => stream.write(`${JSON.stringify({ progress: o.label, done: last, total: o.total, unit, finished: true, seconds: Number(figures(last).elapsed.toFixed(3)) })}\n`),
    };
  }
  if (mode === 'lines') {
    const every = o.lineEveryMs ?? 2000;
    let lastAt = Number.NEGATIVE_INFINITY;
    let last = 0;
    let lastDetail: string | undefined;
    let printedLast = false;
    const line = (done: number, detail: string | undefined): void => {
      const f = figures(done);
      const of = o.total > 0 ? `${done}/${o.total} ${unit}`.trimEnd() : `${done} ${unit}`.trimEnd();
      const eta = o.total > 0 && done < o.total ? `, ETA ${seconds(f.eta)}` : '';
      stream.write(`${o.label}: ${of}${o.total > 0 ? ` (${Math.floor((100 * done) / o.total)} %)` : ''}, ${f.rate.toFixed(2)} ${unit === '' ? 'items' : unit}/s${eta}${detail === undefined ? '' : ` — ${detail}`}\n`);
    };
    return {
      update: (done, detail, total) => {
        if (total !== undefined) o.total = total;
        last = done;
        lastDetail = detail;
        printedLast = false;
        const now = performance.now();
        if (now - lastAt >= every || (o.total > 0 && done >= o.total)) {
          lastAt = now;
          printedLast = true;
          line(done, detail);
        }
      },
      log: (text) => stream.write(`${text}\n`),
      finish: () => {
        if (!printedLast) line(last, lastDetail);
        stream.write(`${o.label}: done in ${seconds(figures(last).elapsed)}\n`);
      },
    };
  }
  // A live bar; cli-progress is loaded only here, so commands in pipes and --help never load it.
  const { SingleBar, Presets } = (await import('cli-progress')).default;
  const bar = new SingleBar(
    {
      format: `${o.label} [{bar}] {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted} | {detail}`,
      stream: stream as NodeJS.WriteStream,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
    },
    Presets.shades_classic,
  );
  bar.start(Math.max(1, o.total), 0, { rate: '0.00', detail: '' });
  return {
    update: (done, detail, total) => {
      if (total !== undefined && total !== o.total) {
        o.total = total;
        bar.setTotal(total);
      }
      bar.update(done, { rate: figures(done).rate.toFixed(2), detail: detail ?? '' });
    },
    log: (text) => {
      // Clear the bar's line, print, and let the next update redraw the bar below.
      stream.write(`\r\x1b[K${text}\n`);
    },
    finish: () => bar.stop(),
  };
}
