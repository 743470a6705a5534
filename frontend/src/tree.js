// A document (config, summary) as a tree of keys: each object a branch that folds, each leaf a
// row (data-key: its dotted path). The search keeps the leaves whose path contains it, with
// their branches, unfolded.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { formatValue } from "./chart.js";

// A media or histogram value (wandb's {"_type": ...}) is one leaf, not a branch of its parts.
const isMedia = (value) => typeof value._type === "string";
const isBranch = (value) =>
  value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0 && !isMedia(value);
const LONG = 120;

// A leaf's text: numbers and strings as the table shows them; media by their kind; lists and
// objects as JSON, cut short when long (the whole of it in the row's title).
function leafText(value) {
  if (value === null || typeof value !== "object") return [formatValue(value), null];
  if (!Array.isArray(value) && isMedia(value)) return [value._type, JSON.stringify(value).slice(0, 2000)];
  const text = JSON.stringify(value);
  if (text.length <= LONG) return [text, null];
  const what = Array.isArray(value) ? `${value.length} items` : `${Object.keys(value).length} keys`;
  return [`${text.slice(0, LONG)}… (${what})`, text.slice(0, 2000)];
}

// Keys in name order, those starting with "_" (the tracker's own: _step, _runtime) last.
const byName = ([a], [b]) => (a.startsWith("_") !== b.startsWith("_") ? (a.startsWith("_") ? 1 : -1) : a < b ? -1 : a > b ? 1 : 0);

// Rows of the tree, depth first: {path, key, depth, parents (their branches' paths),
// value?, branch}.
function rows(doc, parents = [], out = []) {
  const prefix = parents.length ? parents[parents.length - 1] + "." : "";
  for (const [key, value] of Object.entries(doc || {}).sort(byName)) {
    const path = prefix + key;
    const depth = parents.length;
    if (isBranch(value)) {
      out.push({ path, key, depth, parents, branch: true });
      rows(value, [...parents, path], out);
    } else out.push({ path, key, depth, parents, value, branch: false });
  }
  return out;
}

export function DocTree({ title, doc }) {
  const [query, setQuery] = useState("");
  const [folded, setFolded] = useState(new Set());
  const q = query.toLowerCase();
  const all = rows(doc);
  const matches = new Set(all.filter((r) => !r.branch && r.path.toLowerCase().includes(q)));
  const needed = new Set([...matches].flatMap((r) => r.parents)); // the branches they sit in
  const shown = all.filter((r) => (r.branch ? needed.has(r.path) : matches.has(r)));
  const hidden = (r) => !q && r.parents.some((branch) => folded.has(branch));
  const fold = (path) => {
    const next = new Set(folded);
    if (next.has(path)) next.delete(path);
    else next.add(path);
    setFolded(next);
  };
  const indent = (r) => `padding-left: ${r.depth * 14}px`;
  return html`<section class="doc-tree" data-doc=${title}>
    <h2>${title}</h2>
    <input class="tree-search" placeholder="search keys" value=${query} onInput=${(e) => setQuery(e.target.value)} />
    <table class="kv">
      ${shown.filter((r) => !hidden(r)).map((r) =>
        r.branch
          ? html`<tr class="branch" data-branch=${r.path}><th colspan="2" style=${indent(r)}>
              <button class="link fold" onClick=${() => fold(r.path)}>${folded.has(r.path) && !q ? "▸" : "▾"} ${r.key}</button></th></tr>`
          : leafRow(r, indent(r)),
      )}
    </table>
    ${shown.length === 0 && html`<div class="muted">nothing</div>`}
  </section>`;
}

function leafRow(r, style) {
  const [text, full] = leafText(r.value);
  return html`<tr data-key=${r.path}><th style=${style} title=${r.path}>${r.key}</th><td title=${full}>${text}</td></tr>`;
}
