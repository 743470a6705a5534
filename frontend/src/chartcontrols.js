// The controls every page's charts share: x axis, log y, smoothing (and its weight); a page
// adds its own after them (the workspace: grouping, band, a chart picker).
import { html } from "htm/preact";
import { SMOOTHERS } from "./smoothing.js";

export const DEFAULT_OPTIONS = { xAxis: "_step", logY: false, band: "range", smoothing: { kind: "none", weight: 0.6 } };

// axes: the metrics an x axis may be besides _step, _runtime and _timestamp (the page's
// logged numeric keys: /keys?kind=metrics, or a run's charted keys).
export function ChartControls({ options, setOptions, axes, children }) {
  const set = (change) => setOptions({ ...options, ...change });
  const xs = [...new Set(["_step", "_runtime", "_timestamp", ...axes, options.xAxis])];
  return html`<div class="chart-controls">
    <label>x <select class="x-axis" value=${options.xAxis} onChange=${(e) => set({ xAxis: e.target.value })}>
      ${xs.map((k) => html`<option value=${k}>${k}</option>`)}
    </select></label>
    <label><input type="checkbox" class="log-y" checked=${options.logY} onChange=${(e) => set({ logY: e.target.checked })} /> log y</label>
    <label>smoothing <select class="smoothing" value=${options.smoothing.kind} onChange=${(e) => set({ smoothing: { ...options.smoothing, kind: e.target.value } })}>
      ${Object.entries(SMOOTHERS).map(([k, label]) => html`<option value=${k}>${label || "none"}</option>`)}
    </select></label>
    ${options.smoothing.kind !== "none" && html`<input type="range" class="smoothing-weight" aria-label="smoothing weight" min="0" max="0.99" step="0.01" value=${options.smoothing.weight}
      onChange=${(e) => set({ smoothing: { ...options.smoothing, weight: +e.target.value } })} />`}
    ${children}
  </div>`;
}
