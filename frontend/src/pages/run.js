// A run: overview (name, tags and notes editable), config and summary trees, a chart per
// metric, the system stream's charts, files.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { LineChart } from "../chart.js";
import { ChartControls, DEFAULT_OPTIONS } from "../chartcontrols.js";
import { color } from "../colors.js";
import { projectUrl } from "../router.js";
import { StateBadge } from "../table.js";
import { DocTree } from "../tree.js";

const time = (t) => (t ? new Date(t * 1000).toLocaleString() : "—");

export function RunPage({ entity, project, runId }) {
  const [run, setRun] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    document.title = `${runId} · runbase`;
    api.run(entity, project, runId).then(setRun, (err) => setError(err.message));
  }, [entity, project, runId]);
  if (error) return html`<div class="error">${error}</div>`;
  if (!run) return html`<div class="muted">loading…</div>`;
  return html`<div class="run-page">
    <h1><a href="/">projects</a> / <a href=${projectUrl(entity, project)}>${project}</a> / <span class="run-name">${run.display_name}</span></h1>
    <${Overview} run=${run} onChange=${setRun} />
    <div class="docs"><${DocTree} title="config" doc=${run.config} /><${DocTree} title="summary" doc=${run.summary} /></div>
    <${Charts} run=${run} stream="default" title="Charts" />
    <${Charts} run=${run} stream="system" title="System" />
    <${Files} run=${run} />
  </div>`;
}

function Overview({ run, onChange }) {
  const [name, setName] = useState(run.display_name);
  const [tags, setTags] = useState(run.tags.join(", "));
  const [notes, setNotes] = useState(run.notes || "");
  const [status, setStatus] = useState("");
  const save = async (event) => {
    event.preventDefault();
    try {
      const changed = await api.updateRun(run.entity, run.project, run.run_id, {
        display_name: name,
        tags: tags.split(",").map((t) => t.trim()).filter(Boolean),
        notes: notes || null,
      });
      onChange(changed);
      setStatus("saved");
    } catch (err) {
      setStatus(err.message);
    }
  };
  const meta = run.metadata || {};
  const runtime = (run.state === "running" ? Date.now() / 1000 : run.heartbeat_at) - run.created_at;
  return html`<form class="overview" onSubmit=${save}>
    <table class="kv">
      <tr><th>state</th><td><${StateBadge} state=${run.state} />${run.exit_code != null ? ` exit ${run.exit_code}` : ""}</td></tr>
      <tr><th>id</th><td>${run.run_id}</td></tr>
      <tr><th>created</th><td>${time(run.created_at)}</td></tr>
      <tr><th>last heartbeat</th><td>${time(run.heartbeat_at)}</td></tr>
      <tr><th>runtime</th><td>${Math.max(0, Math.round(runtime))} s</td></tr>
      <tr><th>user</th><td>${run.username}</td></tr>
      <tr><th>host</th><td>${meta.host || "—"}</td></tr>
      <tr><th>command</th><td><code>${[meta.program, ...(meta.args || [])].filter(Boolean).join(" ") || "—"}</code></td></tr>
      ${run.group && html`<tr><th>group</th><td>${run.group}</td></tr>`}
      ${run.job_type && html`<tr><th>job type</th><td>${run.job_type}</td></tr>`}
      <tr><th>name</th><td><input class="edit-name" aria-label="name" value=${name} disabled=${run.read_only} onInput=${(e) => setName(e.target.value)} /></td></tr>
      <tr><th>tags</th><td><input class="edit-tags" aria-label="tags" value=${tags} disabled=${run.read_only} placeholder="tag, tag" onInput=${(e) => setTags(e.target.value)} />
        ${run.tags.map((t) => html` <span class="chip tag">${t}</span>`)}</td></tr>
      <tr><th>notes</th><td><textarea class="edit-notes" aria-label="notes" disabled=${run.read_only} onInput=${(e) => setNotes(e.target.value)}>${notes}</textarea></td></tr>
    </table>
    ${!run.read_only && html`<button type="submit" class="save-run">Save</button>`} <span class="save-status">${status}</span>
  </form>`;
}

function Charts({ run, stream, title }) {
  const [keys, setKeys] = useState(null);
  const [options, setOptions] = useState({ ...DEFAULT_OPTIONS, xAxis: stream === "system" ? "_runtime" : "_step" });
  useEffect(() => {
    api.historyKeys(run.entity, run.project, run.run_id, stream).then(
      (k) => setKeys(Object.keys(k.keys).filter((key) => !key.startsWith("_") && charted(run, stream, key)).sort()),
      () => setKeys([]),
    );
  }, [run.run_id, stream]);
  if (!keys || keys.length === 0) return null;
  const curves = [{ key: run.run_id, label: run.display_name, color: color(0), paths: [[run.entity, run.project, run.run_id]] }];
  return html`<section class=${"run-charts stream-" + stream}>
    <h2>${title}</h2>
    <${ChartControls} options=${options} setOptions=${setOptions} axes=${stream === "default" ? keys : []} />
    <div class="charts">${keys.map((key) => html`<${LineChart} key=${key} metric=${key} curves=${curves} stream=${stream} ...${options} />`)}</div>
  </section>`;
}

// A metric of the default stream is charted when its last value (in the summary) is a number:
// not for text, media or histograms. The system stream holds numbers only.
const charted = (run, stream, key) => stream !== "default" || typeof (run.summary || {})[key] === "number";

function Files({ run }) {
  const [files, setFiles] = useState(null);
  useEffect(() => {
    api.files(run.entity, run.project, run.run_id).then((page) => setFiles(page.items), () => setFiles([]));
  }, [run.run_id]);
  if (!files) return null;
  return html`<section class="files">
    <h2>Files</h2>
    ${files.length === 0 && html`<div class="muted">no files</div>`}
    <table class="file-list">
      ${files.map((f) => html`<tr data-file=${f.name}>
        <td><a href=${api.fileUrl(run.entity, run.project, run.run_id, f.name)} download=${f.name.split("/").pop()}>${f.name}</a></td>
        <td class="num">${f.size} B</td><td>${time(f.updated_at)}</td>
      </tr>`)}
    </table>
  </section>`;
}
