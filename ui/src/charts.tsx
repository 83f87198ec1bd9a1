/**
 * Small SVG charts for the dashboards: a line chart over time and a histogram. A few hundred
 * points at most, redrawn once a second, so plain SVG paths are enough (no chart library).
 */
import { niceStep } from "./timeline/canvas";

export interface Series {
  label: string;
  colour: string;
  values: (number | null)[];
}

const W = 360;
const H = 140;
const L = 46;
const B = 20;
const T = 8;
const R = 8;

/** A line chart of `series` against `times` (epoch s); y labels through `format`. */
export function LineChart(props: {
  title: string;
  times: number[];
  series: Series[];
  format: (v: number) => string;
  metric?: string;
  /** The values are counts: ticks at whole numbers. */
  integer?: boolean;
}) {
  const { times, series } = props;
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && isFinite(v)));
  const top = Math.max(props.integer ? 1 : 1e-9, ...all) * 1.1;
  const step = props.integer ? Math.max(1, Math.round(niceStep(top / 4))) : niceStep(top / 4);
  const yMax = Math.max(step, Math.ceil(top / step) * step);
  const t0 = times.length ? times[0] : 0;
  const t1 = times.length > 1 ? times[times.length - 1] : t0 + 1;
  const x = (t: number) => L + ((t - t0) / Math.max(1e-9, t1 - t0)) * (W - L - R);
  const y = (v: number) => T + (1 - v / yMax) * (H - T - B);
  const ticks: number[] = [];
  for (let v = 0; v <= yMax + step / 2; v += step) ticks.push(v);
  return (
    <figure class="chart" data-chart={props.metric}>
      <figcaption>
        {props.title}
        {series.length > 1 ? (
          <span class="chart-keys">
            {series.map((s) => <span key={s.label}><i style={{ background: s.colour }} />{s.label}</span>)}
          </span>
        ) : null}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        {ticks.map((v) => (
          <g key={v} class="tick">
            <line x1={L} x2={W - R} y1={y(v)} y2={y(v)} />
            <text x={L - 6} y={y(v) + 4} text-anchor="end">{props.format(v)}</text>
          </g>
        ))}
        {times.length > 0 ? (
          <text x={W - R} y={H - 5} text-anchor="end" class="axis-note">
            {times.length > 1 ? `last ${Math.round(t1 - t0)} s` : "1 s so far"}
          </text>
        ) : (
          <text x={(L + W) / 2} y={H / 2} text-anchor="middle" class="axis-note">waiting for data…</text>
        )}
        {series.map((s) => {
          let d = "";
          let pen = false;
          s.values.forEach((v, i) => {
            if (v === null || !isFinite(v) || i >= times.length) {
              pen = false;
              return;
            }
            d += `${pen ? "L" : "M"}${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`;
            pen = true;
          });
          const only = s.values.length === 1 && s.values[0] !== null && times.length > 0 ? s.values[0] : null;
          return (
            <g key={s.label}>
              <path d={d} stroke={s.colour} class="line" />
              {only !== null ? <circle cx={x(times[0])} cy={y(only)} r={2.5} fill={s.colour} /> : null}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

/** A histogram of counts by (numeric) key, such as batch sizes. */
export function Histogram(props: { title: string; counts: Record<string, number>; metric?: string; unit?: string }) {
  const entries = Object.entries(props.counts).map(([k, n]) => [Number(k), n] as const).sort((a, b) => a[0] - b[0]);
  const top = Math.max(1, ...entries.map(([, n]) => n));
  const slot = entries.length ? Math.min(48, (W - L - R) / entries.length) : 0;
  const y = (v: number) => T + (1 - v / top) * (H - T - B);
  return (
    <figure class="chart" data-chart={props.metric}>
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <line class="tick-line" x1={L} x2={W - R} y1={H - B} y2={H - B} />
        <text x={L - 6} y={T + 8} text-anchor="end" class="axis-note">{top}</text>
        {entries.length === 0 ? <text x={(L + W) / 2} y={H / 2} text-anchor="middle" class="axis-note">no batches yet</text> : null}
        {entries.map(([key, n], i) => (
          <g key={key}>
            <rect class="hbar" x={L + i * slot + slot * 0.15} width={slot * 0.7} y={y(n)} height={H - B - y(n)}>
              <title>{`${key}${props.unit ?? ""}: ${n}`}</title>
            </rect>
            {entries.length <= 24 ? <text x={L + i * slot + slot / 2} y={H - 6} text-anchor="middle" class="axis-note">{key}</text> : null}
          </g>
        ))}
      </svg>
    </figure>
  );
}

/** A number with a label, for the dashboards' top row. */
export function Stat(props: { label: string; value: string; raw: number | null; metric: string; tone?: "bad" | "warn" | "" }) {
  return (
    <div class={`stat ${props.tone ?? ""}`}>
      <div class="stat-label" id={`label-${props.metric}`}>{props.label}</div>
      <div class="stat-value" data-metric={props.metric} data-value={props.raw === null ? "" : String(props.raw)} id={`metric-${props.metric}`} aria-labelledby={`label-${props.metric}`}>{props.value}</div>
    </div>
  );
}
