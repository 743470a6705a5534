// Selected runs side by side: chosen metrics overlaid, configs with a differences-only
// switch, and each summary metric's change against a baseline run.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { formatValue, LineChart } from "../chart.js";
import { ChartControls, DEFAULT_OPTIONS } from "../chartcontrols.js";
import { color } from "../colors.js";
import { projectUrl, runUrl } from "../router.js";

function flatten(doc, prefix = "", out = {}) {
  for (const [key, value] of Object.entries(doc || {})) {
    const path = prefix ? prefix + "." + key : key;
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0) {
      if (Object.keys(value).length === 1 && "value" in value) out[path] = value.value;
      else flatten(value, path, out);
    } else out[path] = value;
  }
  return out;
}

const show = (v) => (v === undefined ? "" : typeof v === "object" && v !== null ? JSON.stringify(v) : formatValue(v));

export function Compare({ entity, project, runs: ids, metrics: chosen }) {
  const [runs, setRuns] = useState(null);
  const [error, setError] = useState(null);
  const [metrics, setMetrics] = useState([]);
  const [chartable, setChartable] = useState([]);
  const [options, setOptions] = useState(DEFAULT_OPTIONS);
  const [diffOnly, setDiffOnly] = useState(false);
  const [baseline, setBaseline] = useState(ids[0]);
  useEffect(() => {
    document.title = `compare · ${project} · runbase`;
    Promise.all([
      api.queryRuns({ entity, project, filters: { name: { $in: ids } }, per_page: 1000 }),
      api.keys(entity, project, "metrics", "", 10000),
    ]).then(([page, logged]) => {
      const byId = new Map(page.items.map((r) => [r.run_id, r]));
      const ordered = ids.map((id) => byId.get(id)).filter(Boolean);
      // a chart for each metric these runs logged (not a value set only in the summary)
      const numbers = new Set(summaryKeys(ordered));
      const keys = logged.keys.filter((k) => numbers.has(k));
      setRuns(ordered);
      setChartable(keys);
      setMetrics(chosen.length ? chosen : keys.slice(0, 3));
    }, (err) => setError(err.message));
  }, [entity, project, ids.join(",")]);
  if (error) return html`<div class="error">${error}</div>`;
  if (!runs) return html`<div class="muted">loading…</div>`;
  const curves = runs.map((r, i) => ({ key: r.run_id, label: r.display_name || r.run_id, color: color(i), paths: [[r.entity, r.project, r.run_id]] }));
  const allMetrics = [...new Set([...chartable, ...metrics])];
  const toggleMetric = (m) => setMetrics(metrics.includes(m) ? metrics.filter((x) => x !== m) : [...metrics, m]);
  return html`<div class="compare">
    <h1><a href="/">projects</a> / <a href=${projectUrl(entity, project)}>${project}</a> / compare ${runs.length} runs</h1>
    <div class="metric-choice">
      ${allMetrics.map((m) => html`<label><input type="checkbox" data-metric=${m} checked=${metrics.includes(m)} onChange=${() => toggleMetric(m)} /> ${m}</label>`)}
    </div>
    <${ChartControls} options=${options} setOptions=${setOptions} axes=${chartable} />
    <div class="charts">
      ${metrics.map((m) => html`<${LineChart} key=${m} metric=${m} curves=${curves} ...${options} />`)}
    </div>
    <${ConfigTable} runs=${runs} diffOnly=${diffOnly} setDiffOnly=${setDiffOnly} />
    <${SummaryTable} runs=${runs} baseline=${baseline} setBaseline=${setBaseline} />
  </div>`;
}

function summaryKeys(runs) {
  const keys = new Set();
  for (const r of runs) for (const [k, v] of Object.entries(flatten(r.summary))) if (!k.startsWith("_") && typeof v === "number") keys.add(k);
  return [...keys].sort();
}

function Header({ runs }) {
  return html`<tr><th>key</th>${runs.map((r, i) => html`<th><i class="swatch" style=${{ background: color(i) }}></i><a href=${runUrl(r.entity, r.project, r.run_id)}>${r.display_name || r.run_id}</a></th>`)}</tr>`;
}

function ConfigTable({ runs, diffOnly, setDiffOnly }) {
  const flat = runs.map((r) => flatten(r.config));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
  const differs = (k) => new Set(flat.map((f) => JSON.stringify(f[k]))).size > 1;
  const shown = diffOnly ? keys.filter(differs) : keys;
  return html`<section class="compare-config">
    <h2>Config <label><input type="checkbox" class="diff-only" checked=${diffOnly} onChange=${(e) => setDiffOnly(e.target.checked)} /> differences only</label></h2>
    <table class="kv wide"><${Header} runs=${runs} />
      ${shown.map((k) => html`<tr data-key=${k} class=${differs(k) ? "differs" : ""}><th>${k}</th>${flat.map((f) => html`<td>${show(f[k])}</td>`)}</tr>`)}
    </table>
  </section>`;
}

function SummaryTable({ runs, baseline, setBaseline }) {
  const flat = runs.map((r) => flatten(r.summary));
  const base = flat[Math.max(0, runs.findIndex((r) => r.run_id === baseline))];
  const keys = summaryKeys(runs);
  const change = (v, b) => {
    if (typeof v !== "number" || typeof b !== "number") return "";
    const d = v - b;
    const pct = b !== 0 ? ` (${d >= 0 ? "+" : ""}${formatValue((d / Math.abs(b)) * 100)}%)` : "";
    return `${d >= 0 ? "+" : ""}${formatValue(d)}${pct}`;
  };
  return html`<section class="compare-summary">
    <h2>Summary against <select class="baseline" aria-label="baseline run" value=${baseline} onChange=${(e) => setBaseline(e.target.value)}>
      ${runs.map((r) => html`<option value=${r.run_id}>${r.display_name || r.run_id}</option>`)}
    </select></h2>
    <table class="kv wide"><${Header} runs=${runs} />
      ${keys.map((k) => html`<tr data-key=${k}><th>${k}</th>${flat.map((f, i) => html`<td data-run=${runs[i].run_id}>
        ${show(f[k])}${runs[i].run_id !== baseline ? html` <span class="delta">${change(f[k], base[k])}</span>` : ""}</td>`)}</tr>`)}
    </table>
  </section>`;
}
