// The dashboard: one shell for every page; the route picks the page.
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { html } from "htm/preact";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";
import { Compare } from "./pages/compare.js";
import { Projects } from "./pages/projects.js";
import { RunPage } from "./pages/run.js";
import { Workspace } from "./pages/workspace.js";
import { useRoute } from "./router.js";

function App() {
  const route = useRoute();
  const [session, setSession] = useState(null);
  useEffect(() => {
    api.session().then(setSession, () => {});
  }, []);
  const key = location.pathname + location.search;
  return html`<div class="app">
    <header class="top">
      <a class="brand" href="/">runbase</a>
      <span class="spacer-flex"></span>
      ${session && html`<span class="user">${session.user}</span>`}
      ${session && session.login && html`<button class="logout" onClick=${api.logout}>Log out</button>`}
    </header>
    <main key=${key}>${page(route)}</main>
  </div>`;
}

function page(route) {
  switch (route.page) {
    case "projects":
      return html`<${Projects} />`;
    case "workspace":
      return html`<${Workspace} entity=${route.entity} project=${route.project} />`;
    case "run":
      return html`<${RunPage} entity=${route.entity} project=${route.project} runId=${route.runId} />`;
    case "compare":
      return html`<${Compare} entity=${route.entity} project=${route.project} runs=${route.runs} metrics=${route.metrics} />`;
    default:
      return html`<div class="error">Not found</div>`;
  }
}

render(html`<${App} />`, document.getElementById("app") || document.body);
