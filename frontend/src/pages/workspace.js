// A project's workspace: charts of the visible runs (or groups) above the runs table.
import { html } from "htm/preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { allRuns, api } from "../api.js";
import { LineChart } from "../chart.js";
import { ChartControls, DEFAULT_OPTIONS } from "../chartcontrols.js";
import { color } from "../colors.js";
import { FilterBuilder } from "../filters.js";
import { KeyPicker } from "../keypicker.js";
import { compareUrl } from "../router.js";
import { usePagedRuns } from "../runs.js";
import { BASE_COLUMNS, cellValue, RunsTable } from "../table.js";

const CHARTED = 20;
const GROUP_RUNS = 200; // the most runs a group chart asks curves for, all groups together

export function Workspace({ entity, project }) {
  const [filters, setFilters] = useState({});
  const [order, setOrder] = useState("-created_at");
  const [columns, setColumns] = useState(BASE_COLUMNS.map((c) => c.key));
  const [metrics, setMetrics] = useState(null); // the charts shown
  const [logged, setLogged] = useState([]); // every metric of the project: the x axes
  const [selected, setSelected] = useState(new Set());
  const [groupBy, setGroupBy] = useState("");
  const [chartOptions, setChartOptions] = useState(DEFAULT_OPTIONS);
  const [keys, setKeys] = useState([]);
  const [columnsKnown, setColumnsKnown] = useState(false); // the runs are asked for once, with the default columns

  useEffect(() => {
    document.title = `${project} · runbase`;
    const kinds = ["metrics", "summary", "config"].map((kind) => api.keys(entity, project, kind, "", 200));
    Promise.all(kinds).then(([metricKeys, summary, config]) => {
      setMetrics(metricKeys.keys.slice(0, 12));
      setLogged(metricKeys.keys);
      const asKey = (metric) => metric.replace(/\\/g, "\\\\").replace(/\./g, "\\.");
      const summaryKeys = plainSummaryKeys(summary.keys);
      const shown = [...new Set([...metricKeys.keys.map(asKey), ...summaryKeys])].slice(0, 4);
      setColumns((old) => [...old, ...config.keys.slice(0, 3).map((k) => "config." + k), ...shown.map((k) => "summary_metrics." + k)]);
      setKeys([...config.keys.map((k) => "config." + k), ...summaryKeys.map((k) => "summary_metrics." + k)]);
    }).finally(() => setColumnsKnown(true));
  }, [entity, project]);

  const dataColumns = columns.filter((c) => c.includes("."));
  const requestColumns = groupBy && groupBy.includes(".") ? [...dataColumns, groupBy] : dataColumns;
  const paged = usePagedRuns({ entity, project, filters, order, columns: columnsKnown ? requestColumns : null });
  const groups = useGroups({ entity, project, filters, order, columns: requestColumns, groupBy });

  const selectedRuns = useMemo(() => new Map(), [entity, project]);
  const toggle = (runId) => {
    const next = new Set(selected);
    if (next.has(runId)) next.delete(runId);
    else {
      next.add(runId);
      const run = paged.runs.find((r) => r.run_id === runId);
      if (run) selectedRuns.set(runId, run);
    }
    setSelected(next);
  };
  const charted = selected.size > 0 ? [...selected].map((id) => selectedRuns.get(id)).filter(Boolean) : paged.runs.slice(0, CHARTED);
  const curves = groups.list
    ? groups.list.map((g) => ({ key: "group:" + g.label, label: g.label, color: g.color, group: true, paths: g.paths }))
    : charted.map((run, i) => ({ key: run.run_id, label: run.display_name || run.run_id, color: color(i), paths: [[run.entity, run.project, run.run_id]] }));
  const colors = new Map(charted.map((run, i) => [run.run_id, color(i)]));

  const sort = (key) => setOrder(order === "-" + key ? "+" + key : "-" + key);
  const rows = groups.list ? groups.rows : paged.rows;
  const count = paged.count;
  return html`<div class="workspace">
    <div class="page-head">
      <h1><a href="/">projects</a> / ${entity} / ${project}</h1>
      <span class="run-count">${count == null ? "" : `${count} runs`}</span>
      ${paged.added > 0 && html`<button class="new-runs" onClick=${paged.showAdded}>${paged.added} new ${paged.added === 1 ? "run" : "runs"}: show</button>`}
      ${selected.size > 0 && html`<a class="button compare-link" href=${compareUrl(entity, project, [...selected])}>Compare ${selected.size}</a>
        <button class="link" onClick=${() => setSelected(new Set())}>clear selection</button>`}
    </div>
    <${FilterBuilder} keys=${keys} onApply=${setFilters} error=${paged.error} />
    <${WorkspaceControls} entity=${entity} project=${project} options=${chartOptions} setOptions=${setChartOptions}
      groupBy=${groupBy} setGroupBy=${setGroupBy} keys=${keys} axes=${logged}
      onAddMetric=${(key) => !(metrics || []).includes(key) && setMetrics([...(metrics || []), key])} />
    <div class="charts">
      ${metrics && metrics.map((metric) => html`<${LineChart} key=${metric} metric=${metric} curves=${curves} ...${chartOptions} />`)}
      ${metrics && metrics.length === 0 && html`<div class="muted">no metrics logged yet</div>`}
    </div>
    <div class="table-tools">
      <${KeyPicker} entity=${entity} project=${project} placeholder="+ column (search keys)"
        onPick=${(key) => !columns.includes(key) && setColumns([...columns, key])} />
      ${columns.filter((c) => c.includes(".")).map((c) => html`<span class="chip">${c}<button class="link" aria-label=${"remove column " + c} onClick=${() => setColumns(columns.filter((x) => x !== c))}>✕</button></span>`)}
    </div>
    <${RunsTable} rows=${rows} columns=${columns} order=${order} onSort=${sort} selected=${selected} onSelect=${toggle}
      onToggleGroup=${groups.toggle} colorOf=${(id) => colors.get(id)} />
  </div>`;
}

// Summary keys worth a column or a filter: not the parts of a media or histogram value (a
// dict holding "_type": its leaves are "x._type", "x.bins", ...) nor those starting with "_".
function plainSummaryKeys(keys) {
  const media = keys.filter((k) => k.endsWith("._type")).map((k) => k.slice(0, -"_type".length));
  return keys.filter((k) => !k.startsWith("_") && !media.some((prefix) => k.startsWith(prefix)));
}

function WorkspaceControls({ entity, project, options, setOptions, groupBy, setGroupBy, keys, axes, onAddMetric }) {
  const set = (change) => setOptions({ ...options, ...change });
  return html`<${ChartControls} options=${options} setOptions=${setOptions} axes=${axes}>
    <label>group by <select class="group-by" value=${groupBy} onChange=${(e) => setGroupBy(e.target.value)}>
      <option value="">none</option><option value="group">group</option><option value="job_type">job_type</option>
      ${keys.filter((k) => k.startsWith("config.")).map((k) => html`<option value=${k}>${k}</option>`)}
    </select></label>
    ${groupBy && html`<label>band <select class="band" value=${options.band} onChange=${(e) => set({ band: e.target.value })}>
      <option value="range">min/max</option><option value="std">standard deviation</option>
    </select></label>`}
    <${KeyPicker} entity=${entity} project=${project} kinds=${["metrics"]} placeholder="+ chart (search metrics)" onPick=${onAddMetric} />
  <//>`;
}

// Grouping: every run of the query (only the columns shown), grouped by a value; the table
// then lists groups, each opened to show its runs.
function useGroups({ entity, project, filters, order, columns, groupBy }) {
  const [runs, setRuns] = useState(null);
  const [open, setOpen] = useState(new Set());
  useEffect(() => {
    setRuns(null);
    if (!groupBy) return;
    const controller = new AbortController();
    allRuns({ entity, project, filters, order, columns }, controller.signal).then(setRuns, () => {});
    return () => controller.abort();
  }, [groupBy, entity, project, JSON.stringify([filters, order, columns])]);
  return useMemo(() => {
    if (!groupBy || !runs) return { list: null, toggle: () => {} };
    const byValue = new Map();
    for (const run of runs) {
      const value = cellValue(run, groupBy);
      const label = value === undefined || value === null ? "(none)" : typeof value === "object" ? JSON.stringify(value) : String(value);
      if (!byValue.has(label)) byValue.set(label, []);
      byValue.get(label).push(run);
    }
    const list = [...byValue].map(([label, members], i) => ({ kind: "group", label, value: label, runs: members, color: color(i), open: open.has(label) }));
    const share = Math.max(1, Math.floor(GROUP_RUNS / Math.max(1, list.length)));
    for (const g of list) g.paths = g.runs.slice(0, share).map((r) => [r.entity, r.project, r.run_id]);
    const flat = list.flatMap((g) => [g, ...(g.open ? g.runs.map((run) => ({ kind: "run", run })) : [])]);
    const toggle = (label) => {
      const next = new Set(open);
      if (next.has(label)) next.delete(label);
      else next.add(label);
      setOpen(next);
    };
    return { list, toggle, rows: { count: flat.length, rowAt: (i) => flat[i], want: () => {} } };
  }, [runs, groupBy, open]);
}
