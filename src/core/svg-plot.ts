import { CipherMLError } from './errors.ts';
import { assertIntegerInRange } from './guards.ts';

/**
 * Dependency-free SVG line charts for training curves (loss, accuracy per round). Output is a
 * standalone SVG 1.1 document (https://www.w3.org/TR/SVG11/) that browsers and Markdown viewers
 * render as an image. Every caller-supplied string passes through XML escaping (XML 1.0 §2.4,
 * §2.2: markup characters escaped, characters outside the XML Char production replaced by
 * U+FFFD), so titles and series names cannot inject markup.
 */

/**
 * One line of a chart. Points whose x or y is NaN or ±Infinity are skipped; the line joins the
 * finite points on either side.
 *
 * @example
 * ```ts
 * const s: ChartSeries = { name: 'loss', yLabel: 'log loss', points: [[1, 0.69], [2, 0.31]] };
 * ```
 */
export interface ChartSeries {
  readonly name: string;
  /** Label of the y axis; the axis shows the distinct labels of all series joined by " / ". */
  readonly yLabel?: string;
  readonly points: readonly (readonly [number, number])[];
}

/**
 * One chart: a title, an x-axis label, its series and optional size in pixels.
 *
 * @example
 * ```ts
 * const chart: ChartOptions = { title: 'Test accuracy', xLabel: 'round', series: [{ name: 'fedavg', points: [[1, 0.9]] }] };
 * ```
 */
export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly series: readonly ChartSeries[];
  /** Events to mark at an x value (a dropout, a retried round): a dotted vertical line and a short label. */
  readonly marks?: readonly ChartMark[];
  /** Width in pixels, an integer in [160, 10000]; default 640. */
  readonly width?: number;
  /** Height in pixels, an integer in [120, 10000]; default 320. */
  readonly height?: number;
}

/**
 * An event marked on a chart.
 *
 * @example
 * ```ts
 * const mark: ChartMark = { x: 2, label: 'dropout: 5' };
 * ```
 */
export interface ChartMark {
  readonly x: number;
  readonly label: string;
}

/** Category10 palette (d3-scale-chromatic, after Tableau 10). */
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'] as const;
/**
 * Each series also differs by dash pattern and point marker, so that lines lying on top of each
 * other (or printed in grey) stay distinguishable: series i gets DASHES[i mod 4] and MARKERS[i mod 4].
 */
const DASHES = ['', '7 4', '2 3', '9 3 2 3'] as const;
const MARKERS = ['circle', 'square', 'triangle', 'diamond'] as const;

function marker(kind: (typeof MARKERS)[number], x: number, y: number, color: string): string {
  const r = 3.5;
  switch (kind) {
    case 'circle':
      return `<circle cx="${fmt(x)}" cy="${fmt(y)}" r="${r}" fill="${color}"/>`;
    case 'square':
      return `<rect x="${fmt(x - r)}" y="${fmt(y - r)}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`;
    case 'triangle':
      return `<polygon points="${fmt(x)},${fmt(y - r - 1)} ${fmt(x - r - 0.5)},${fmt(y + r)} ${fmt(x + r + 0.5)},${fmt(y + r)}" fill="${color}"/>`;
    default:
      return `<polygon points="${fmt(x)},${fmt(y - r - 1)} ${fmt(x + r + 1)},${fmt(y)} ${fmt(x)},${fmt(y + r + 1)} ${fmt(x - r - 1)},${fmt(y)}" fill="${color}"/>`;
  }
}

const DEFAULT_WIDTH = 640;
const DEFAULT_HEIGHT = 320;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
/** Rough advance width of a 12px sans-serif glyph, used only to wrap the legend. */
const CHAR_WIDTH = 7;

/**
 * Renders one line chart as a standalone SVG document: title, legend, axes with "nice" ticks,
 * one polyline per series that has a finite point (a lone point also gets a dot). A chart with
 * no finite point shows empty axes and "no data".
 *
 * @example
 * ```ts
 * const svg = lineChartSvg({
 *   title: 'Federated logistic regression',
 *   xLabel: 'round',
 *   series: [{ name: 'test loss', yLabel: 'log loss', points: [[1, 0.27], [2, 0.21], [3, 0.18]] }],
 * });
 * await writeFile('loss.svg', svg);
 * ```
 */
export function lineChartSvg(options: ChartOptions): string {
  const chart = renderChart(options, 'chart');
  return document(chart.width, chart.height, options.title, chart.body);
}

/**
 * Renders several charts stacked top to bottom in one SVG document (e.g. loss above accuracy,
 * sharing the x axis label). The document is as wide as the widest chart.
 *
 * @example
 * ```ts
 * const svg = stackedChartsSvg([
 *   { title: 'Test loss', xLabel: 'round', series: [{ name: 'loss', points: loss }] },
 *   { title: 'Test accuracy', xLabel: 'round', series: [{ name: 'accuracy', points: acc }] },
 * ]);
 * ```
 */
export function stackedChartsSvg(charts: readonly ChartOptions[]): string {
  if (!Array.isArray(charts) || charts.length === 0) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected a non-empty array of charts', { param: 'charts' });
  }
  const rendered = charts.map((c, i) => renderChart(c, `charts[${i}]`));
  const width = Math.max(...rendered.map((r) => r.width));
  let y = 0;
  const parts: string[] = [];
  for (const r of rendered) {
    parts.push(`<g transform="translate(0 ${y})">\n${r.body}</g>\n`);
    y += r.height;
  }
  return document(width, y, charts.map((c) => c.title).join(' — '), parts.join(''));
}

/**
 * Escapes text for XML character data and attribute values: `& < > " '` become entities and
 * characters XML 1.0 forbids (C0 controls other than tab/newline/return, lone surrogates,
 * U+FFFE/U+FFFF) become U+FFFD.
 *
 * @example
 * ```ts
 * escapeXml('loss < 0.1 & "ok"'); // 'loss &lt; 0.1 &amp; &quot;ok&quot;'
 * ```
 */
export function escapeXml(text: string): string {
  let out = '';
  for (const ch of String(text)) {
    const c = ch.codePointAt(0)!;
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += '&quot;';
    else if (ch === "'") out += '&apos;';
    else if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || (c >= 0xd800 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) out += '\ufffd';
    else out += ch;
  }
  return out;
}

function document(width: number, height: number, label: string, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(label)}">\n` +
    `<rect width="${width}" height="${height}" fill="#ffffff"/>\n` +
    body +
    '</svg>\n'
  );
}

interface Rendered {
  readonly width: number;
  readonly height: number;
  readonly body: string;
}

function renderChart(options: ChartOptions, param: string): Rendered {
  if (options === null || typeof options !== 'object') {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected chart options', { param });
  }
  const width = options.width ?? DEFAULT_WIDTH;
  const height = options.height ?? DEFAULT_HEIGHT;
  assertIntegerInRange(width, `${param}.width`, 160, 10_000);
  assertIntegerInRange(height, `${param}.height`, 120, 10_000);
  if (!Array.isArray(options.series)) {
    throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected an array of series', { param: `${param}.series` });
  }
  const series = options.series.map((s, i) => {
    const points: unknown = (s as Partial<ChartSeries> | null)?.points;
    if (!Array.isArray(points)) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', 'expected { name, points: [x, y][] }', { param: `${param}.series[${i}]` });
    }
    const finite = (points as unknown[]).filter((p): p is readonly [number, number] => Array.isArray(p) && Number.isFinite(p[0]) && Number.isFinite(p[1]));
    return { name: String(s.name), points: finite, color: PALETTE[i % PALETTE.length]!, dash: DASHES[i % DASHES.length]!, marker: MARKERS[i % MARKERS.length]! };
  });
  // Only series with data get a legend entry: a name with nothing drawn would mislead.
  const shown = series.filter((s) => s.points.length > 0);
  const marks = (options.marks ?? []).filter((m) => Number.isFinite(m.x));

  // Legend rows wrap at the plot width; they sit between the title and the plot.
  const left = 64;
  const right = 16;
  const plotWidth = width - left - right;
  const legendRows: { x: number; s: (typeof series)[number] }[][] = [[]];
  let cursor = 0;
  for (const s of shown) {
    const itemWidth = 28 + Math.min(s.name.length, 40) * CHAR_WIDTH + 16;
    if (cursor > 0 && cursor + itemWidth > plotWidth) {
      legendRows.push([]);
      cursor = 0;
    }
    legendRows[legendRows.length - 1]!.push({ x: cursor, s });
    cursor += itemWidth;
  }
  const legendHeight = shown.length === 0 ? 0 : legendRows.length * 18;
  const top = 36 + legendHeight;
  const bottom = 44;
  const plotHeight = Math.max(height - top - bottom, 20);
  const totalHeight = top + plotHeight + bottom;

  const all = series.flatMap((s) => s.points);
  const [x0, x1] = domain(all.map((p) => p[0]));
  const [y0, y1] = domain(all.map((p) => p[1]));
  const xTicks = niceTicks(x0, x1, Math.max(2, Math.floor(plotWidth / 80)));
  const yTicks = niceTicks(y0, y1, Math.max(2, Math.floor(plotHeight / 40)));
  const xMin = Math.min(x0, xTicks.values[0]!);
  const xMax = Math.max(x1, xTicks.values[xTicks.values.length - 1]!);
  const yMin = Math.min(y0, yTicks.values[0]!);
  const yMax = Math.max(y1, yTicks.values[yTicks.values.length - 1]!);
  const sx = (x: number): number => left + fraction(x, xMin, xMax) * plotWidth;
  const sy = (y: number): number => top + plotHeight - fraction(y, yMin, yMax) * plotHeight;

  const out: string[] = [];
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" ${FONT} font-size="15" font-weight="600">${escapeXml(options.title)}</text>\n`);
  legendRows.forEach((row, r) => {
    for (const { x, s } of row) {
      const ly = 36 + r * 18 + 4;
      const lx = left + x;
      out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${s.dash === '' ? '' : ` stroke-dasharray="${s.dash}"`}/>`);
      out.push(marker(s.marker, lx + 11, ly, s.color));
      out.push(`<text x="${lx + 28}" y="${ly + 4}" ${FONT} font-size="12">${escapeXml(truncate(s.name, 40))}</text>\n`);
    }
  });

  // Grid and ticks.
  for (const v of yTicks.values) {
    const y = fmt(sy(v));
    out.push(`<line x1="${left}" y1="${y}" x2="${left + plotWidth}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${left - 6}" y="${fmt(sy(v) + 4)}" text-anchor="end" ${FONT} font-size="11" fill="#444">${formatTick(v, yTicks.decimals)}</text>\n`);
  }
  for (const v of xTicks.values) {
    const x = fmt(sx(v));
    out.push(`<line x1="${x}" y1="${top + plotHeight}" x2="${x}" y2="${top + plotHeight + 5}" stroke="#444"/>`);
    out.push(`<text x="${x}" y="${top + plotHeight + 18}" text-anchor="middle" ${FONT} font-size="11" fill="#444">${formatTick(v, xTicks.decimals)}</text>\n`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#444"/>\n`);
  out.push(`<text x="${left + plotWidth / 2}" y="${top + plotHeight + 36}" text-anchor="middle" ${FONT} font-size="12">${escapeXml(options.xLabel)}</text>\n`);
  const yLabel = [...new Set(options.series.flatMap((s) => (typeof s.yLabel === 'string' && s.yLabel !== '' ? [s.yLabel] : [])))].join(' / ');
  if (yLabel !== '') {
    const cy = fmt(top + plotHeight / 2);
    out.push(`<text x="14" y="${cy}" transform="rotate(-90 14 ${cy})" text-anchor="middle" ${FONT} font-size="12">${escapeXml(yLabel)}</text>\n`);
  }

  if (all.length === 0) {
    out.push(`<text x="${left + plotWidth / 2}" y="${fmt(top + plotHeight / 2)}" text-anchor="middle" ${FONT} font-size="13" fill="#888">no data</text>\n`);
  }
  // Event marks under the lines: a dotted vertical line at x, its label rotated along it.
  for (const m of marks) {
    if (m.x < xMin || m.x > xMax) continue;
    const x = fmt(sx(m.x));
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotHeight}" stroke="#b00020" stroke-width="1" stroke-dasharray="1 3"/>`);
    out.push(`<text x="${fmt(sx(m.x) + 3)}" y="${top + 4}" transform="rotate(90 ${fmt(sx(m.x) + 3)} ${top + 4})" ${FONT} font-size="10" fill="#b00020">${escapeXml(truncate(m.label, 30))}</text>\n`);
  }
  for (const s of shown) {
    const coords = s.points.map((p) => `${fmt(sx(p[0]))},${fmt(sy(p[1]))}`).join(' ');
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"${s.dash === '' ? '' : ` stroke-dasharray="${s.dash}"`} points="${coords}"/>\n`);
    // Markers on every point (thinned to about 30 per line) tell overlapping lines apart.
    const every = Math.max(1, Math.ceil(s.points.length / 30));
    s.points.forEach((p, k) => {
      if (k % every === 0 || k === s.points.length - 1) out.push(marker(s.marker, sx(p[0]), sy(p[1]), s.color));
    });
    out.push('\n');
  }
  return { width, height: totalHeight, body: out.join('') };
}

const MIN_NORMAL = 2 ** -1022;

/** Position of v in [lo, hi] as a fraction; halves first when hi − lo overflows (a domain spanning ±MAX_VALUE). */
function fraction(v: number, lo: number, hi: number): number {
  const span = hi - lo;
  return Number.isFinite(span) ? (v - lo) / span : (v / 2 - lo / 2) / (hi / 2 - lo / 2);
}

/** [min, max] of the values, widened when empty or degenerate so that scales never divide by 0. */
function domain(values: readonly number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo !== hi) return [lo, hi];
  // ±10 % around a lone value, or ±1 where 10 % would be 0 or subnormal; never past ±MAX_VALUE.
  let pad = Math.abs(lo) * 0.1;
  if (pad < MIN_NORMAL) pad = 1;
  const below = lo - pad;
  const above = hi + pad;
  return [Number.isFinite(below) ? below : lo, Number.isFinite(above) ? above : hi];
}

/**
 * Tick values covering [lo, hi] at a step of 1, 2 or 5 × 10^k, about `target` of them
 * (P. Heckbert, "Nice Numbers for Graph Labels", Graphics Gems, 1990).
 */
function niceTicks(lo: number, hi: number, target: number): { values: number[]; decimals: number } {
  const step = niceNumber(niceNumber(hi - lo, false) / Math.max(target - 1, 1), true);
  const start = Math.floor(lo / step) * step;
  const end = Math.ceil(hi / step) * step;
  const count = Math.round((end - start) / step);
  // Ranges near the float64 limits (hi − lo overflows) or below its resolution: label the ends only.
  if (!Number.isFinite(step) || step === 0 || !(count >= 1 && count <= 100)) return { values: [lo, hi], decimals: -1 };
  const decimals = Math.min(Math.max(-Math.floor(Math.log10(step)), 0), 20);
  const values: number[] = [];
  for (let i = 0; i <= count; i++) values.push(start + i * step);
  return { values, decimals };
}

function niceNumber(range: number, round: boolean): number {
  const exponent = Math.floor(Math.log10(range));
  const fraction = range / 10 ** exponent;
  let nice: number;
  if (round) nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  else nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * 10 ** exponent;
}

/** `decimals` −1 marks end-only labels of a degenerate range: shown to 6 significant digits. */
function formatTick(v: number, decimals: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-4)) return v.toExponential(2);
  if (decimals < 0) return String(Number(v.toPrecision(6)));
  const s = v.toFixed(decimals);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

function fmt(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function truncate(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`;
}
