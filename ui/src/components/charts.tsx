// Small inline-SVG charts: no chart library, nothing fetched.
import type { Heatmap, Histogram, QuantityView } from "../api/types";
import { bytes, num } from "../format";

/** A quantity's value in its unit, bytes shown as KiB/MiB/GiB. */
export function qtext(q: QuantityView): string {
  return q.unit === "B" ? bytes(q.value) : `${num(q.value)} ${q.unit}`;
}

/** The significant digits a range's ends need to differ: two (it is a rough band, not a
 * measurement), more only when two would print both ends the same. */
function digits(lo: number, hi: number): number {
  for (let d = 2; d < 5; d++) if (lo.toPrecision(d) !== hi.toPrecision(d)) return d;
  return 5;
}

function approx(v: number, d: number): string {
  return Number.isFinite(v) ? num(Number(v.toPrecision(d)), 6) : num(v);
}

/** A range's end in a quantity's unit (bytes as KiB/MiB/GiB). */
function vtext(q: QuantityView, v: number, d: number): string {
  return q.unit === "B" ? bytes(v) : `${approx(v, d)} ${q.unit}`;
}

/** The range an estimate carries, e.g. "1,100–4,600 tok/s"; empty without one. */
export function rangeText(q: QuantityView): string {
  if (!q.range) return "";
  const [lo, hi] = q.range;
  const d = digits(lo, hi);
  return q.unit === "B" ? `${bytes(lo)}–${bytes(hi)}` : `${approx(lo, d)}–${approx(hi, d)} ${q.unit}`;
}

/** Hover text for a projected number: value, its range, formula and the sources of its constants. */
export function explain(q: QuantityView): string {
  const src = q.sources.length ? `\nsources: ${q.sources.join("; ")}` : "";
  const range = q.range
    ? `\n80 % range ${vtext(q, q.range[0], digits(...q.range))} to ${vtext(q, q.range[1], digits(...q.range))}: where published measurements the decode model was not fitted to land`
    : "";
  return `${qtext(q)}${q.estimate ? " (estimate)" : ""}${range}\n= ${q.formula}${src}`;
}

export interface Bar {
  label: string;
  value: number;
  title?: string;
  color?: string;
}

/** Horizontal bars on a shared scale. */
export function Bars({ bars, format, width = 420 }: { bars: Bar[]; format: (v: number) => string; width?: number }) {
  const max = Math.max(1e-12, ...bars.map((b) => b.value));
  const rowH = 22;
  const labelW = 150;
  const barW = width - labelW - 90;
  return (
    <svg class="chart" viewBox={`0 0 ${width} ${bars.length * rowH + 4}`} style={{ maxWidth: `${width}px` }} role="img">
      {bars.map((b, i) => (
        <g key={i} transform={`translate(0, ${i * rowH + 2})`}>
          <title>{b.title ?? `${b.label}: ${format(b.value)}`}</title>
          <text x={labelW - 6} y={14} text-anchor="end" class="axis">
            {b.label}
          </text>
          <rect x={labelW} y={3} width={Math.max(1, (b.value / max) * barW)} height={rowH - 8} rx={2} fill={b.color ?? "var(--accent)"} />
          <text x={labelW + Math.max(1, (b.value / max) * barW) + 6} y={14} class="axis">
            {format(b.value)}
          </text>
        </g>
      ))}
    </svg>
  );
}

/** Before/after pairs per category (e.g. memory, $/month), each pair on the same scale. */
export function PairBars(props: {
  rows: { label: string; before?: QuantityView; after?: QuantityView }[];
  width?: number;
}) {
  const width = props.width ?? 520;
  const labelW = 170;
  const barW = width - labelW - 150;
  const rowH = 34;
  const max = Math.max(1e-12, ...props.rows.flatMap((r) => [r.before?.value ?? 0, r.after?.value ?? 0]));
  return (
    <svg class="chart" viewBox={`0 0 ${width} ${props.rows.length * rowH + 4}`} style={{ maxWidth: `${width}px` }} role="img">
      {props.rows.map((r, i) => (
        <g key={i} transform={`translate(0, ${i * rowH + 2})`}>
          <text x={labelW - 6} y={18} text-anchor="end" class="axis">
            {r.label}
          </text>
          {[r.before, r.after].map((q, k) =>
            q ? (
              <g key={k}>
                <title>{`${k === 0 ? "original" : "compressed"} — ${explain(q)}`}</title>
                <rect
                  x={labelW}
                  y={3 + k * 14}
                  width={Math.max(1, (q.value / max) * barW)}
                  height={12}
                  rx={2}
                  fill={k === 0 ? "var(--before)" : "var(--accent)"}
                />
                <text x={labelW + Math.max(1, (q.value / max) * barW) + 6} y={13 + k * 14} class="axis small">
                  {qtext(q)}
                </text>
              </g>
            ) : null,
          )}
        </g>
      ))}
    </svg>
  );
}

/** Overlaid before/after histograms of one tensor's weights (log-scaled counts). */
export function HistogramChart({ h, width = 560, height = 220 }: { h: Histogram; width?: number; height?: number }) {
  const pad = { l: 40, r: 10, t: 10, b: 28 };
  const w = width - pad.l - pad.r;
  const ht = height - pad.t - pad.b;
  const bins = h.before.length;
  const max = Math.log1p(Math.max(1, ...h.before, ...h.after));
  const path = (counts: number[]) =>
    counts
      .map((c, i) => {
        const x = pad.l + (i / bins) * w;
        const y = pad.t + ht - (Math.log1p(c) / max) * ht;
        return `${i === 0 ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)} L${(pad.l + ((i + 1) / bins) * w).toFixed(1)},${y.toFixed(1)}`;
      })
      .join(" ");
  return (
    <svg class="chart" viewBox={`0 0 ${width} ${height}`} style={{ maxWidth: `${width}px` }} role="img" data-testid="histogram">
      <path d={path(h.before)} fill="none" stroke="var(--before)" stroke-width={2} />
      <path d={path(h.after)} fill="none" stroke="var(--accent)" stroke-width={1.5} />
      <line x1={pad.l} x2={pad.l + w} y1={pad.t + ht} y2={pad.t + ht} class="axisline" />
      <text x={pad.l} y={height - 8} class="axis">
        {num(h.min)}
      </text>
      <text x={pad.l + w} y={height - 8} text-anchor="end" class="axis">
        {num(h.max)}
      </text>
      <text x={pad.l + w / 2} y={height - 8} text-anchor="middle" class="axis">
        weight value (count on log scale)
      </text>
    </svg>
  );
}

function heatColor(t: number): string {
  // 0 → pale, 1 → deep red.
  const l = 95 - t * 55;
  return `hsl(${20 - t * 15}, 85%, ${l}%)`;
}

/** Per-layer × tensor-kind relative error. */
/** Layers × kinds grid; `what` names the value in tooltips (default: relative error). */
export function HeatmapChart<L extends number | string>({
  hm,
  onPick,
  what = "relative error",
  testId = "heatmap",
}: {
  hm: { layers: L[]; kinds: string[]; cells: (number | null)[] } | Heatmap;
  onPick?: (layer: L, kind: string) => void;
  what?: string;
  testId?: string;
}) {
  const cell = 22;
  const labelW = 44;
  const headH = 110;
  const vals = hm.cells.filter((c): c is number => c !== null);
  const max = Math.max(1e-12, ...vals);
  const legendSteps = 10;
  const width = Math.max(labelW + hm.kinds.length * cell + 8, labelW + legendSteps * 14 + 120);
  const gridBottom = headH + hm.layers.length * cell + 4;
  const height = gridBottom + (vals.length ? 34 : 0);
  return (
    <svg class="chart" width={width} height={height} role="img" data-testid={testId}>
      {vals.length > 0 && (
        // The colour scale: pale is no error, deep red the largest in the grid.
        <g class="legend" data-testid={`${testId}-legend`} transform={`translate(${labelW}, ${gridBottom + 6})`}>
          {Array.from({ length: legendSteps }, (_, i) => (
            <rect key={i} x={i * 14} y={0} width={14} height={10} fill={heatColor(i / (legendSteps - 1))} />
          ))}
          <text x={0} y={24} class="axis small">
            0
          </text>
          <text x={legendSteps * 14} y={24} text-anchor="end" class="axis small">
            {num(max, 3)}
          </text>
          <text x={legendSteps * 14 + 8} y={9} class="axis small">
            {what}
          </text>
        </g>
      )}
      {hm.kinds.map((k, j) => (
        <text key={k} transform={`translate(${labelW + j * cell + 14}, ${headH - 4}) rotate(-60)`} class="axis small">
          {k}
        </text>
      ))}
      {(hm.layers as L[]).map((layer, i) => (
        <g key={layer}>
          <text x={labelW - 6} y={headH + i * cell + 15} text-anchor="end" class="axis small">
            {typeof layer === "number" || /^\d+$/.test(String(layer)) ? `L${layer}` : layer}
          </text>
          {hm.kinds.map((k, j) => {
            const v = hm.cells[i * hm.kinds.length + j] ?? null;
            return (
              <rect
                key={k}
                x={labelW + j * cell}
                y={headH + i * cell}
                width={cell - 2}
                height={cell - 2}
                fill={v === null ? "var(--panel2)" : heatColor(v / max)}
                onClick={() => onPick?.(layer, k)}
              >
                <title>{v === null ? `${layer} ${k}: not measured` : `${layer} ${k}: ${what} ${num(v, 5)}`}</title>
              </rect>
            );
          })}
        </g>
      ))}
    </svg>
  );
}

export interface Point {
  id: number;
  x: number;
  y: number;
  label: string;
  frontier: boolean;
}

/** Accuracy-vs-cost scatter with the frontier drawn through the non-dominated points. */
export function Scatter(props: { points: Point[]; xLabel: string; yLabel: string; selected?: number; onPick: (id: number) => void }) {
  const width = 620;
  const height = 340;
  const pad = { l: 60, r: 20, t: 16, b: 44 };
  const xs = props.points.map((p) => p.x);
  const ys = props.points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs, 0), Math.max(...xs, 1e-12) * 1.08];
  // Lower is better on y; a variant better than the original sits below zero.
  const [y0, y1] = [Math.min(...ys, 0), Math.max(...ys, 1e-12) * 1.15];
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const sy = (y: number) => pad.t + (1 - (y - y0) / (y1 - y0 || 1)) * (height - pad.t - pad.b);
  const front = props.points.filter((p) => p.frontier).sort((a, b) => a.x - b.x);
  return (
    <svg class="chart" viewBox={`0 0 ${width} ${height}`} style={{ maxWidth: `${width}px` }} role="img" data-testid="frontier">
      <line x1={pad.l} x2={width - pad.r} y1={height - pad.b} y2={height - pad.b} class="axisline" />
      <line x1={pad.l} x2={pad.l} y1={pad.t} y2={height - pad.b} class="axisline" />
      <text x={(width + pad.l) / 2} y={height - 8} text-anchor="middle" class="axis">
        {props.xLabel}
      </text>
      <text transform={`translate(14, ${(height - pad.b) / 2}) rotate(-90)`} text-anchor="middle" class="axis">
        {props.yLabel}
      </text>
      <text x={pad.l} y={height - pad.b + 16} class="axis small">
        {num(x0, Math.abs(x1) >= 100 ? 0 : 3)}
      </text>
      <text x={width - pad.r} y={height - pad.b + 16} text-anchor="end" class="axis small">
        {num(x1, Math.abs(x1) >= 100 ? 0 : 3)}
      </text>
      <text x={pad.l - 4} y={pad.t + 8} text-anchor="end" class="axis small">
        {num(y1)}
      </text>
      <text x={pad.l - 4} y={height - pad.b} text-anchor="end" class="axis small">
        {num(y0)}
      </text>
      {front.length > 1 && (
        <polyline points={front.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" ")} fill="none" stroke="var(--accent)" stroke-dasharray="4 3" />
      )}
      {props.points.map((p) => (
        <g key={p.id} onClick={() => props.onPick(p.id)} class="pt">
          <title>{`${p.label}: x=${num(p.x)}, y=${num(p.y, 5)}${p.frontier ? " (on the frontier)" : ""}`}</title>
          <circle cx={sx(p.x)} cy={sy(p.y)} r={props.selected === p.id ? 8 : 6} fill={p.frontier ? "var(--accent)" : "var(--before)"} stroke={props.selected === p.id ? "var(--fg)" : "none"} stroke-width={2} />
          <text x={sx(p.x) + 9} y={sy(p.y) - 6} class="axis small">
            {p.label}
          </text>
        </g>
      ))}
    </svg>
  );
}

export interface Series {
  label: string;
  points: [number, number][];
  /** Dots only (measurements) or a line through the points (a model). */
  dots: boolean;
  color: string;
  dashed?: boolean;
}

/** Series on a log-2 x axis (batch sizes) and a linear y axis from zero, with a legend. */
export function CurveChart(props: { series: Series[]; xLabel: string; yLabel: string; id?: string; format?: (v: number) => string }) {
  const width = 560;
  const height = 280;
  const pad = { l: 64, r: 150, t: 14, b: 44 };
  const fmt = props.format ?? ((v: number) => num(v, 0));
  const all = props.series.flatMap((s) => s.points);
  const xs = all.map(([x]) => Math.log2(x));
  const [x0, x1] = [Math.min(...xs, 0), Math.max(...xs, 1)];
  const y1 = Math.max(...all.map(([, y]) => y), 1e-12) * 1.1;
  const sx = (x: number) => pad.l + ((Math.log2(x) - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const sy = (y: number) => pad.t + (1 - y / y1) * (height - pad.t - pad.b);
  const ticks = [...new Set(all.map(([x]) => x))].sort((a, b) => a - b);
  return (
    <svg class="chart" id={props.id} viewBox={`0 0 ${width} ${height}`} style={{ maxWidth: `${width}px` }} role="img">
      <line x1={pad.l} x2={width - pad.r} y1={height - pad.b} y2={height - pad.b} class="axisline" />
      <line x1={pad.l} x2={pad.l} y1={pad.t} y2={height - pad.b} class="axisline" />
      <text x={(width - pad.r + pad.l) / 2} y={height - 8} text-anchor="middle" class="axis">
        {props.xLabel}
      </text>
      <text transform={`translate(14, ${(height - pad.b) / 2}) rotate(-90)`} text-anchor="middle" class="axis">
        {props.yLabel}
      </text>
      {ticks.map((t) => (
        <text key={t} x={sx(t)} y={height - pad.b + 16} text-anchor="middle" class="axis small">
          {t}
        </text>
      ))}
      <text x={pad.l - 4} y={pad.t + 8} text-anchor="end" class="axis small">
        {fmt(y1)}
      </text>
      <text x={pad.l - 4} y={height - pad.b} text-anchor="end" class="axis small">
        0
      </text>
      {props.series.map((s, i) => (
        <g key={s.label} data-series={s.label}>
          {!s.dots && s.points.length > 1 && (
            <polyline
              points={s.points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" ")}
              fill="none"
              stroke={s.color}
              stroke-width={2}
              stroke-dasharray={s.dashed ? "5 4" : undefined}
            />
          )}
          {s.points.map(([x, y]) => (
            <circle key={x} class="datum" cx={sx(x)} cy={sy(y)} r={s.dots ? 5 : 3} fill={s.color}>
              <title>{`${s.label} at ${x}: ${fmt(y)}`}</title>
            </circle>
          ))}
          <g transform={`translate(${width - pad.r + 14}, ${pad.t + 8 + i * 18})`}>
            <line x1={0} x2={18} y1={-4} y2={-4} stroke={s.color} stroke-width={s.dots ? 0 : 2} stroke-dasharray={s.dashed ? "5 4" : undefined} />
            {s.dots && <circle cx={9} cy={-4} r={4} fill={s.color} />}
            <text x={24} y={0} class="axis small">
              {s.label}
            </text>
          </g>
        </g>
      ))}
    </svg>
  );
}
