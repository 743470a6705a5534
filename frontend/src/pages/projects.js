// The viewer's projects, newest activity first.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { projectUrl } from "../router.js";

export function Projects() {
  const [projects, setProjects] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    document.title = "projects · runbase";
    api.overview().then((o) => setProjects(o.projects), (err) => setError(err.message));
  }, []);
  if (error) return html`<div class="error">${error}</div>`;
  if (!projects) return html`<div class="muted">loading…</div>`;
  return html`<div class="projects">
    <h1>Projects</h1>
    ${projects.length === 0 && html`<p class="muted">No projects yet: log a run with <code>runbase.init(project="...")</code>.</p>`}
    <table class="project-list">
      <thead><tr><th>Project</th><th>Entity</th><th>Runs</th><th>Last activity</th></tr></thead>
      <tbody>
        ${projects.map((p) => html`<tr data-project=${p.entity + "/" + p.name}>
          <td><a href=${projectUrl(p.entity, p.name)}>${p.name}</a></td>
          <td>${p.entity}</td>
          <td class="num run-count">${p.run_count}</td>
          <td>${p.last_activity ? new Date(p.last_activity * 1000).toLocaleString() : "—"}</td>
        </tr>`)}
      </tbody>
    </table>
  </div>`;
}
