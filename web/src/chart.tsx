/**
 * A line chart in plain SVG (docs/ARCHITECTURE.md "Web console": no chart library, the console's
 * figures are a few dozen points per job). Points are per epoch, x = 1…n; the y axis spans 0 (or
 * the smallest value, with `fromZero: false`) to the largest value, both labelled.
 */
export interface Series {
  readonly name: string;
  readonly values: readonly number[];
}

const W = 360;
const H = 160;
const PAD = { left: 48, right: 10, top: 10, bottom: 28 };
const COLOURS = ['#1f5fa8', '#b5462a'];

const fmt = (v: number): string => (Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2));

export function LineChart(props: { title: string; xLabel: string; series: readonly Series[]; testId?: string; fromZero?: boolean }) {
  const all = props.series.flatMap((s) => s.values.filter((v) => Number.isFinite(v)));
  const n = Math.max(0, ...props.series.map((s) => s.values.length));
  if (all.length === 0 || n === 0) return null;
  const lo = props.fromZero === false ? Math.min(...all) : Math.min(0, ...all);
  const hi = Math.max(...all) === lo ? lo + 1 : Math.max(...all);
  const x = (i: number): number => PAD.left + (n === 1 ? (W - PAD.left - PAD.right) / 2 : (i * (W - PAD.left - PAD.right)) / (n - 1));
  const y = (v: number): number => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  return (
    <figure class="chart" data-testid={props.testId} data-points={String(n)}>
      <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-label={props.title}>
        <line x1={PAD.left} y1={y(lo)} x2={W - PAD.right} y2={y(lo)} stroke="#999" />
        <line x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={H - PAD.bottom} stroke="#999" />
        <text x={PAD.left - 4} y={y(hi) + 4} text-anchor="end" font-size="10">{fmt(hi)}</text>
        <text x={PAD.left - 4} y={y(lo) + 4} text-anchor="end" font-size="10">{fmt(lo)}</text>
        <text x={x(0)} y={H - PAD.bottom + 12} text-anchor="middle" font-size="10">1</text>
        {n > 1 && <text x={x(n - 1)} y={H - PAD.bottom + 12} text-anchor="middle" font-size="10">{n}</text>}
        <text x={(W + PAD.left) / 2} y={H - 4} text-anchor="middle" font-size="10">{props.xLabel}</text>
        {props.series.map((s, k) => {
          const pts = s.values.map((v, i) => [x(i), y(v)] as const).filter(([, py]) => Number.isFinite(py));
          const colour = COLOURS[k % COLOURS.length];
          return (
            <g key={s.name} data-series={s.name}>
              <polyline fill="none" stroke={colour} stroke-width="2" points={pts.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ')} />
              {pts.map(([px, py], i) => <circle key={i} cx={px} cy={py} r="3" fill={colour} />)}
            </g>
          );
        })}
      </svg>
      <figcaption>
        {props.title}
        {props.series.length > 1 && `: ${props.series.map((s, k) => `${s.name} (${k === 0 ? 'blue' : 'red'})`).join(', ')}`}
      </figcaption>
    </figure>
  );
}
