// The runs table: a virtual list (only the rows in view are in the DOM) over a source of
// rows that loads pages as the view reaches them.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { formatValue } from "./chart.js";
import { runUrl } from "./router.js";

export const ROW_HEIGHT = 28;
const OVERSCAN = 10;

export const BASE_COLUMNS = [
  { key: "display_name", label: "Name" },
  { key: "state", label: "State" },
  { key: "created_at", label: "Created" },
];

export function columnLabel(key) {
  const base = BASE_COLUMNS.find((c) => c.key === key);
  return base ? base.label : key.replace(/^summary_metrics\./, "").replace(/^config\./, "config.");
}

function unwrap(v) {
  return v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && "value" in v ? v.value : v;
}

// A run's value of a column key (config.X, summary_metrics.X or a run field).
export function cellValue(run, key) {
  const dot = key.indexOf(".");
  const head = dot < 0 ? key : key.slice(0, dot);
  if (head === "config" || head === "summary_metrics") {
    const doc = head === "config" ? run.config : run.summary;
    const path = key.slice(dot + 1);
    if (path in doc) return unwrap(doc[path]);
    let v = doc;
    for (const part of path.split(".")) v = v == null ? undefined : unwrap(v)[part];
    return unwrap(v);
  }
  return run[key];
}

export function formatCell(run, key) {
  const v = cellValue(run, key);
  if (key === "created_at" || key === "heartbeat_at" || key === "updated_at") return v ? new Date(v * 1000).toLocaleString() : "";
  if (v === undefined) return "";
  if (typeof v === "object" && v !== null) return JSON.stringify(v);
  return formatValue(v);
}

export function StateBadge({ state }) {
  return html`<span class=${"badge state-" + state}>${state}</span>`;
}

// rows: {count, rowAt(i) -> row | undefined, want(last)}; a row is {kind: "run", run} or
// {kind: "group", ...}.
export function RunsTable({ rows, columns, order, onSort, selected, onSelect, onToggleGroup, colorOf }) {
  const scroller = useRef(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  useEffect(() => {
    const el = scroller.current;
    const update = () => setView({ top: el.scrollTop, height: el.clientHeight });
    update();
    el.addEventListener("scroll", update, { passive: true });
    const observer = new ResizeObserver(update);
    observer.observe(el);
    return () => {
      el.removeEventListener("scroll", update);
      observer.disconnect();
    };
  }, []);
  const first = Math.max(0, Math.floor(view.top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.count, Math.ceil((view.top + view.height) / ROW_HEIGHT) + OVERSCAN);
  useEffect(() => rows.want(last), [rows, last]);

  const visible = [];
  for (let i = first; i < last; i++) visible.push([i, rows.rowAt(i)]);
  const sortKey = order.replace(/^[-+]/, "");
  const arrow = order.startsWith("+") ? " ▲" : " ▼";
  const sortedBy = (key) => sortKey === key || sortKey === key.replace(/^summary_metrics\./, "");
  const header = html`<div class="tr th" role="row" aria-rowindex="1">
    <span class="td check" role="columnheader" aria-label="selected"></span>
    ${columns.map(
      (key) => html`<span class=${key === "display_name" ? "td col name" : "td col"} role="columnheader" title=${key}
        aria-sort=${sortedBy(key) ? (order.startsWith("+") ? "ascending" : "descending") : "none"}
        onClick=${() => onSort(key)} data-key=${key}>
        ${columnLabel(key)}${sortedBy(key) ? arrow : ""}
      </span>`,
    )}
  </div>`;
  // role=table with aria-rowcount: assistive tools (and tests) see how many rows there are,
  // though only those in view are in the DOM.
  return html`<div class="runs-table" role="table" aria-label="runs" aria-rowcount=${rows.count + 1}>
    <div role="rowgroup">${header}</div>
    <div class="tbody" role="rowgroup" ref=${scroller}>
      <div class="spacer" style=${{ height: rows.count * ROW_HEIGHT + "px" }}>
        ${visible.map(([i, row]) => html`<${Row} key=${i} index=${i} row=${row} columns=${columns}
          selected=${selected} onSelect=${onSelect} onToggleGroup=${onToggleGroup} colorOf=${colorOf} />`)}
      </div>
    </div>
  </div>`;
}

function Row({ index, row, columns, selected, onSelect, onToggleGroup, colorOf }) {
  const style = { top: index * ROW_HEIGHT + "px" };
  const rowIndex = index + 2; // 1 is the header
  if (!row) return html`<div class="tr loading" role="row" aria-rowindex=${rowIndex} style=${style}><span class="td muted" role="cell">loading…</span></div>`;
  if (row.kind === "group") {
    return html`<div class="tr group-row" role="row" aria-rowindex=${rowIndex} aria-expanded=${row.open ? "true" : "false"}
      style=${style} data-group=${row.label} onClick=${() => onToggleGroup(row.value)}>
      <span class="td check" role="cell">${row.open ? "▾" : "▸"}</span>
      ${columns.map((key, i) =>
        i === 0
          ? html`<span class="td col" role="cell"><i class="swatch" style=${{ background: row.color }}></i>${row.label} <span class="muted">(${row.runs.length})</span></span>`
          : html`<span class="td col" role="cell" data-key=${key}>${formatMean(row.runs, key)}</span>`,
      )}
    </div>`;
  }
  const run = row.run;
  const color = colorOf && colorOf(run.run_id);
  const name = run.display_name || run.run_id;
  return html`<div class=${"tr run-row" + (selected.has(run.run_id) ? " selected" : "")} role="row" aria-rowindex=${rowIndex}
    aria-selected=${selected.has(run.run_id) ? "true" : "false"} style=${style} data-run=${run.run_id}>
    <span class="td check" role="cell"><input type="checkbox" aria-label=${"select " + name} checked=${selected.has(run.run_id)} onClick=${() => onSelect(run.run_id)} /></span>
    ${columns.map((key) => {
      if (key === "display_name") {
        return html`<span class="td col name" role="cell">
          ${color && html`<i class="swatch" style=${{ background: color }}></i>`}
          <a href=${runUrl(run.entity, run.project, run.run_id)}>${name}</a>
        </span>`;
      }
      if (key === "state") return html`<span class="td col" role="cell" data-key="state"><${StateBadge} state=${run.state} /></span>`;
      return html`<span class="td col" role="cell" data-key=${key}>${formatCell(run, key)}</span>`;
    })}
  </div>`;
}

function formatMean(runs, key) {
  if (!key.includes(".")) return "";
  const values = runs.map((r) => cellValue(r, key)).filter((v) => typeof v === "number" && Number.isFinite(v));
  if (values.length === 0) return "";
  return "mean " + formatValue(values.reduce((s, v) => s + v, 0) / values.length);
}
