// The filter builder: conditions on config.X, summary_metrics.X, state, tags and names,
// and'ed together, plus a raw MongoDB filter for what the builder cannot say.
import { html } from "htm/preact";
import { useState } from "preact/hooks";

const OPS = {
  "=": (v) => v,
  "!=": (v) => ({ $ne: v }),
  ">": (v) => ({ $gt: v }),
  ">=": (v) => ({ $gte: v }),
  "<": (v) => ({ $lt: v }),
  "<=": (v) => ({ $lte: v }),
  in: (v) => ({ $in: Array.isArray(v) ? v : String(v).split(",").map((s) => parseValue(s.trim())) }),
  contains: (v) => ({ $regex: escapeRegex(String(v)) }),
  exists: () => ({ $exists: true }),
};
const FIELDS = ["state", "tags", "display_name", "name", "group", "job_type"];

function escapeRegex(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function parseValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function buildFilters(conditions, raw) {
  const parts = conditions.filter((c) => c.field).map((c) => ({ [c.field]: OPS[c.op](parseValue(c.value)) }));
  if (raw.trim()) parts.push(JSON.parse(raw));
  if (parts.length === 0) return {};
  return parts.length === 1 ? parts[0] : { $and: parts };
}

export function FilterBuilder({ keys, onApply, error }) {
  const [conditions, setConditions] = useState([]);
  const [raw, setRaw] = useState("");
  const [parseError, setParseError] = useState(null);
  const update = (i, change) => setConditions(conditions.map((c, j) => (i === j ? { ...c, ...change } : c)));
  const apply = (event) => {
    event.preventDefault();
    try {
      setParseError(null);
      onApply(buildFilters(conditions, raw));
    } catch (err) {
      setParseError("raw filter: " + err.message);
    }
  };
  return html`<form class="filters" role="search" aria-label="filter runs" onSubmit=${apply}>
    <datalist id="filter-fields">${[...FIELDS, ...keys].map((k) => html`<option value=${k} />`)}</datalist>
    ${conditions.map(
      (c, i) => html`<div class="condition">
        <input class="field" list="filter-fields" aria-label="filter key" placeholder="config.lr" value=${c.field} onInput=${(e) => update(i, { field: e.target.value })} />
        <select class="op" aria-label="operator" value=${c.op} onChange=${(e) => update(i, { op: e.target.value })}>
          ${Object.keys(OPS).map((op) => html`<option value=${op}>${op}</option>`)}
        </select>
        <input class="value" aria-label="filter value" placeholder="value" value=${c.value} onInput=${(e) => update(i, { value: e.target.value })} />
        <button type="button" class="link" aria-label="remove condition" onClick=${() => setConditions(conditions.filter((_, j) => j !== i))}>✕</button>
      </div>`,
    )}
    <div class="filter-actions">
      <button type="button" class="add-condition" onClick=${() => setConditions([...conditions, { field: "", op: "=", value: "" }])}>+ condition</button>
      <input class="raw-filter" aria-label="raw MongoDB filter" placeholder='raw MongoDB filter, e.g. {"config.lr": {"$lt": 0.01}}' value=${raw} onInput=${(e) => setRaw(e.target.value)} />
      <button type="submit" class="apply-filter">Apply</button>
    </div>
    ${(parseError || error) && html`<div class="error filter-error" role="alert">${parseError || error}</div>`}
  </form>`;
}
