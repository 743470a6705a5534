// A line chart of one metric for several runs (or groups): uPlot on a Canvas2D, its data
// bucketed by the server to the chart's pixel width, a min/max band per curve, hover legend,
// drag to zoom (which refetches the zoomed range), log y and smoothing over a faint raw curve.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { withAlpha } from "./colors.js";
import { fetchCurves, nearest } from "./curves.js";
import { smooth } from "./smoothing.js";

const HEIGHT = 220;

export function formatValue(v) {
  if (v == null) return "—";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(5));
}

// curves: [{key, label, color, paths: [[entity, project, run_id], ...], group: bool}];
// band: "range" (min/max) or "std" (a group's mean +- its standard deviation)
export function LineChart({ metric, curves, stream = "default", xAxis = "_step", logY, smoothing, band = "range", onPainted }) {
  const box = useRef(null);
  const plot = useRef(null);
  const [width, setWidth] = useState(0);
  const [range, setRange] = useState(null);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [hover, setHover] = useState(null);

  useEffect(() => {
    const observer = new ResizeObserver(([entry]) => {
      const w = Math.floor(entry.contentRect.width);
      setWidth((old) => (Math.abs(old - w) > 8 ? w : old));
    });
    observer.observe(box.current);
    return () => observer.disconnect();
  }, []);

  useEffect(() => setRange(null), [xAxis, metric]);

  const curveKey = curves.map((c) => c.key + ":" + c.paths.length).join(",");
  useEffect(() => {
    if (width === 0 || curves.length === 0) return;
    const controller = new AbortController();
    const buckets = Math.max(50, Math.min(2000, Math.round(width)));
    fetchCurves({ curves, metric, stream, xAxis, buckets, range }, controller.signal).then(
      (result) => {
        setError(null);
        setData(result);
      },
      (err) => err.name !== "AbortError" && setError(err.message),
    );
    return () => controller.abort();
  }, [width, curveKey, metric, stream, xAxis, range && range.join(",")]);

  useEffect(() => {
    if (!data || width === 0) return;
    const curvesNow = curves.map((c, i) => ({ ...c, ...data[i], ...(band === "std" && data[i].sd ? deviations(data[i]) : {}) }));
    const shown = curvesNow.map((c) => ({ ...c, ys: smoothing.kind === "none" ? c.y : smooth(smoothing.kind, smoothing.weight, c.x, c.y) }));
    const options = chartOptions(shown, { width, logY, smoothing, xAxis, range, setRange, setHover });
    const table = uPlot.join(shown.flatMap((c) => seriesTables(c, logY, smoothing.kind !== "none")));
    if (plot.current) plot.current.destroy();
    plot.current = new uPlot(options, table, box.current.querySelector(".plot"));
    plot.current.curves = shown;
    box.current.uplot = plot.current; // the drawn data, for tests and the console
    if (onPainted) requestAnimationFrame(() => onPainted(metric));
  }, [data, width, logY, smoothing.kind, smoothing.weight, band]);

  useEffect(() => () => plot.current && plot.current.destroy(), []);

  const empty = data && data.every((c) => c.x.length === 0);
  return html`<div class="chart" ref=${box} role="figure" aria-label=${metric} aria-busy=${data ? "false" : "true"}
    data-metric=${metric} data-state=${data ? "painted" : "loading"}>
    <div class="chart-head">
      <span class="chart-title">${metric}</span>
      ${range && html`<button class="link" onClick=${() => setRange(null)}>reset zoom</button>`}
    </div>
    <div class="plot"></div>
    ${error && html`<div class="error">${error}</div>`}
    ${empty && html`<div class="muted chart-empty">no data</div>`}
    <${Legend} hover=${hover} curves=${curves} xAxis=${xAxis} />
  </div>`;
}

function Legend({ hover, curves, xAxis }) {
  if (!hover) return html`<div class="legend muted">hover for values</div>`;
  return html`<div class="legend" aria-live="polite">
    <span class="legend-x">${xAxis} ${formatValue(hover.x)}</span>
    ${curves.map(
      (c, i) => html`<span class="legend-item" data-curve=${c.key}>
        <i class="swatch" style=${{ background: c.color }}></i>${c.label}: <b class="legend-value">${formatValue(hover.values[i])}</b>
      </span>`,
    )}
  </div>`;
}

function deviations({ y, sd }) {
  return { lo: y.map((m, i) => m - sd[i]), hi: y.map((m, i) => m + sd[i]) };
}

// Per curve: its band's top and bottom (invisible lines), the raw curve, and the smoothed one.
function seriesTables(c, logY, smoothed) {
  const keep = (ys) => (logY ? ys.map((y) => (y > 0 ? y : null)) : ys);
  const tables = [
    [c.x, keep(c.hi)],
    [c.x, keep(c.lo)],
    [c.x, keep(c.y)],
  ];
  if (smoothed) tables.push([c.x, keep(c.ys)]);
  return tables;
}

// A curve's band, between its top series (this one) and its bottom one (the next): in each
// pixel column, a rectangle from the greatest high to the least low there, as wide as the
// gap to the next column. A polygon of a noisy band costs Canvas2D's software rasteriser
// some 18 ms a curve (its edges are slanted); rectangles of whole pixels, 1.
function bandPaths(u, si, i0, i1) {
  const [xs, his, los] = [u.data[0], u.data[si], u.data[si + 1]];
  const path = new Path2D();
  let column = null;
  let top = 0;
  let bottom = 0;
  const flush = (next) => bottom > top && path.rect(column, top, Math.max(1, next - column), bottom - top);
  for (let i = i0; i <= i1; i++) {
    // a raw point (no range) has no band: drawn to the next column it would be a stray line
    if (his[i] == null || los[i] == null || his[i] === los[i]) continue;
    const x = Math.floor(u.valToPos(xs[i], "x", true));
    const high = Math.floor(u.valToPos(his[i], "y", true)); // canvas y grows downwards
    const low = Math.ceil(u.valToPos(los[i], "y", true));
    if (x === column) {
      top = Math.min(top, high);
      bottom = Math.max(bottom, low);
      continue;
    }
    if (column !== null) flush(x);
    [column, top, bottom] = [x, high, low];
  }
  if (column !== null) flush(column + 1);
  return { stroke: null, fill: path, clip: null, band: null, gaps: null, flags: 0 };
}

function chartOptions(curves, { width, logY, smoothing, xAxis, range, setRange, setHover }) {
  const smoothed = smoothing.kind !== "none";
  const series = [{ label: xAxis }];
  for (const c of curves) {
    series.push({ fill: withAlpha(c.color, 0.15), width: 0, points: { show: false }, paths: bandPaths });
    series.push({ width: 0, points: { show: false }, paths: () => null });
    // whole pixel widths: Skia draws a 1px line as a hairline, and a 1.25px one of a noisy
    // curve 40 times slower (20 runs x 800 buckets: 8 ms against 300 ms)
    // a sparse curve (a short run's system stream: one sample) shows its points too
    const points = { show: !smoothed && c.x.length < width / 8, size: 5, fill: c.color };
    series.push({ label: c.label, stroke: smoothed ? withAlpha(c.color, 0.25) : c.color, width: 1, points, spanGaps: true });
    if (smoothed) series.push({ label: c.label, stroke: c.color, width: 2, points: { show: false }, spanGaps: true });
  }
  const isTime = xAxis === "_timestamp";
  return {
    width,
    height: HEIGHT,
    series,
    legend: { show: false },
    axes: [{}, { size: fitLabels }],
    scales: {
      x: { time: isTime, ...(range ? { min: range[0], max: range[1] } : {}) },
      y: logY ? { distr: 3 } : {},
    },
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 3) return;
          const lo = u.posToVal(u.select.left, "x");
          const hi = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          setRange([lo, hi]);
        },
      ],
      setCursor: [
        (u) => {
          const left = u.cursor.left;
          if (left == null || left < 0) return setHover(null);
          const x = u.posToVal(left, "x");
          const values = (u.curves || []).map((c) => {
            const i = nearest(c.x, x);
            return i < 0 ? null : c.ys[i];
          });
          setHover({ x, values });
        },
      ],
    },
  };
}

// The y axis as wide as its longest tick label (uPlot's default, 50 px, cuts "120,000"),
// measured on every layout pass (the ticks may change between them), in steps of 8 px so
// that the passes settle.
function fitLabels(u, values, axisIdx) {
  const axis = u.axes[axisIdx];
  const longest = (values || []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), "");
  u.ctx.font = axis.font[0];
  const text = u.ctx.measureText(longest).width / devicePixelRatio;
  return Math.ceil((axis.ticks.size + axis.gap + text + 4) / 8) * 8;
}
