// The JSON API under /api/v1: fetch with the session cookie, the CSRF header on changes,
// errors thrown as ApiError carrying the server's {code, message}.

const csrfMeta = document.querySelector('meta[name="runbase-csrf"]');
const csrf = csrfMeta ? csrfMeta.content : "";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Documents tag non-finite floats as {"$float": "NaN"}; turn them back into numbers.
const FLOATS = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };
function untag(key, value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$float" && value.$float in FLOATS) return FLOATS[value.$float];
  }
  return value;
}

export async function request(method, path, body, signal) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-Runbase-CSRF"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch("/api/v1" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  const text = await response.text();
  let data = null;
  try {
    data = text.includes('"$float"') ? JSON.parse(text, untag) : JSON.parse(text);
  } catch {
    data = { code: "error", message: text || response.statusText };
  }
  if (response.status === 401 && location.pathname !== "/login") {
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }
  if (!response.ok) throw new ApiError(response.status, data.code, data.message || response.statusText);
  return data;
}

export const get = (path, signal) => request("GET", path, undefined, signal);
export const post = (path, body, signal) => request("POST", path, body, signal);
export const patch = (path, body) => request("PATCH", path, body);

const q = (params) => new URLSearchParams(params).toString();
const runPath = (e, p, r) => `/runs/${encodeURIComponent(e)}/${encodeURIComponent(p)}/${encodeURIComponent(r)}`;

export const api = {
  session: () => get("/session"),
  overview: () => get("/overview"),
  keys: (entity, project, kind, search, limit = 200) =>
    get("/keys?" + q({ entity, project, kind, q: search, limit })),
  queryRuns: (body, signal) => post("/runs/query", body, signal),
  countRuns: (body, signal) => post("/runs/count", body, signal),
  run: (e, p, r) => get(runPath(e, p, r)),
  updateRun: (e, p, r, changes) => patch(runPath(e, p, r), changes),
  historyKeys: (e, p, r, stream = "default") => get(runPath(e, p, r) + "/history/keys?" + q({ stream })),
  files: (e, p, r, cursor) => get(runPath(e, p, r) + "/files?" + q({ per_page: 200, ...(cursor ? { cursor } : {}) })),
  fileUrl: (e, p, r, name) => "/api/v1" + runPath(e, p, r) + "/files/" + name.split("/").map(encodeURIComponent).join("/"),
  buckets: (body, signal) => post("/history/buckets", body, signal),
  logout: () =>
    fetch("/logout", { method: "POST", headers: { "X-Runbase-CSRF": csrf }, credentials: "same-origin" }).then(() =>
      location.assign("/login"),
    ),
};

// Every page of runs of a query, following next_cursor.
export async function allRuns(body, signal) {
  const items = [];
  let cursor = null;
  do {
    const page = await api.queryRuns({ ...body, per_page: 1000, cursor }, signal);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}
