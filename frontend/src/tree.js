// A document (config, summary) as a tree of keys, with a search that keeps the paths that
// contain it.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { formatValue } from "./chart.js";

function leaves(doc, prefix = "", out = []) {
  for (const [key, value] of Object.entries(doc || {})) {
    const path = prefix ? prefix + "." + key : key;
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0) leaves(value, path, out);
    else out.push([path, value]);
  }
  return out;
}

export function DocTree({ title, doc }) {
  const [query, setQuery] = useState("");
  const q = query.toLowerCase();
  const shown = leaves(doc).filter(([path]) => path.toLowerCase().includes(q));
  return html`<section class="doc-tree" data-doc=${title}>
    <h2>${title}</h2>
    <input class="tree-search" placeholder="search keys" value=${query} onInput=${(e) => setQuery(e.target.value)} />
    <table class="kv">
      ${shown.map(([path, value]) => html`<tr data-key=${path}><th>${path}</th><td>${typeof value === "object" && value !== null ? JSON.stringify(value) : formatValue(value)}</td></tr>`)}
    </table>
    ${shown.length === 0 && html`<div class="muted">nothing</div>`}
  </section>`;
}
