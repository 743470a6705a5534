// Routing on location.pathname; links with data-nav... no: every same-origin <a> without
// target or download navigates in place through history.pushState.
import { useEffect, useState } from "preact/hooks";

export function parseRoute(pathname, search) {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: "projects" };
  const [entity, project, ...rest] = parts;
  if (parts.length === 2) return { page: "workspace", entity, project };
  if (rest.length === 2 && rest[0] === "runs") return { page: "run", entity, project, runId: rest[1] };
  if (rest.length === 1 && rest[0] === "compare") {
    const params = new URLSearchParams(search);
    const list = (name) => (params.get(name) || "").split(",").filter(Boolean);
    return { page: "compare", entity, project, runs: list("runs"), metrics: list("metrics") };
  }
  return { page: "notfound" };
}

export function navigate(url) {
  history.pushState(null, "", url);
  dispatchEvent(new PopStateEvent("popstate"));
}

export function useRoute() {
  const read = () => parseRoute(location.pathname, location.search);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onPop = () => setRoute(read());
    const onClick = (event) => {
      const a = event.target.closest && event.target.closest("a");
      if (!a || a.target || a.hasAttribute("download") || a.origin !== location.origin) return;
      if (a.pathname.startsWith("/api/") || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      navigate(a.pathname + a.search);
    };
    addEventListener("popstate", onPop);
    document.addEventListener("click", onClick);
    return () => {
      removeEventListener("popstate", onPop);
      document.removeEventListener("click", onClick);
    };
  }, []);
  return route;
}

export const projectUrl = (e, p) => `/${encodeURIComponent(e)}/${encodeURIComponent(p)}`;
export const runUrl = (e, p, r) => `${projectUrl(e, p)}/runs/${encodeURIComponent(r)}`;
export const compareUrl = (e, p, ids) => `${projectUrl(e, p)}/compare?runs=${ids.map(encodeURIComponent).join(",")}`;
