// A key picker with search: asks the server for matching keys (so it stays quick however
// many distinct keys the project has) and offers the first few.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";

export function KeyPicker({ entity, project, kinds = ["summary", "config"], placeholder, onPick }) {
  const [query, setQuery] = useState("");
  const [open, setOpen] = useState(false);
  const [found, setFound] = useState([]);
  useEffect(() => {
    if (!open) return;
    const timer = setTimeout(async () => {
      const lists = await Promise.all(
        kinds.map((kind) =>
          api.keys(entity, project, kind, query, 30).then(({ keys }) =>
            keys.map((key) => (kind === "config" ? "config." : kinds.length > 1 ? "summary_metrics." : "") + key),
          ),
        ),
      );
      setFound(lists.flat());
    }, 120);
    return () => clearTimeout(timer);
  }, [open, query, entity, project]);
  return html`<span class="key-picker">
    <input placeholder=${placeholder} aria-label=${placeholder} value=${query} onFocus=${() => setOpen(true)}
      onBlur=${() => setTimeout(() => setOpen(false), 200)} onInput=${(e) => setQuery(e.target.value)} />
    ${open && found.length > 0 && html`<ul class="key-options">
      ${found.map((key) => html`<li><button type="button" class="link" onMouseDown=${() => { onPick(key); setQuery(""); }}>${key}</button></li>`)}
    </ul>`}
  </span>`;
}
