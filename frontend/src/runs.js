// The runs of a project's query as the table reads them: a count, then pages fetched in
// order as the view reaches them (keyset cursors), and live updates polled with a cursor
// on updated_at that replace the changed runs in place; a poll also counts the query's runs,
// so that runs made since the page loaded are offered (``added``, ``showAdded``) rather than
// pushed into the rows under the reader. No columns (null): nothing asked yet.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api } from "./api.js";

const PAGE = 200;
const POLL_MS = 5000;

export function usePagedRuns({ entity, project, filters, order, columns }) {
  const [version, setVersion] = useState(0);
  const [error, setError] = useState(null);
  const [generation, setGeneration] = useState(0);
  const state = useRef(null);
  const key = JSON.stringify([entity, project, filters, order, columns, generation]);

  useEffect(() => {
    if (columns === null) {
      state.current = null;
      return;
    }
    const controller = new AbortController();
    const s = { runs: [], cursor: null, done: false, count: 0, counted: 0, busy: false, wanted: 0, since: 0, controller };
    state.current = s;
    const body = { entity, project, filters, order, columns };
    const bump = () => state.current === s && setVersion((v) => v + 1);

    s.load = async () => {
      if (s.busy || s.done || s.runs.length >= s.wanted) return;
      s.busy = true;
      try {
        const perPage = Math.min(1000, Math.max(PAGE, s.wanted - s.runs.length));
        const page = await api.queryRuns({ ...body, per_page: perPage, cursor: s.cursor }, controller.signal);
        s.runs.push(...page.items);
        for (const run of page.items) s.since = Math.max(s.since, run.updated_at);
        s.cursor = page.next_cursor;
        s.done = !page.next_cursor;
        s.busy = false;
        bump();
        s.load();
      } catch (err) {
        s.busy = false;
        if (err.name !== "AbortError") setError(err.message);
      }
    };

    setError(null);
    api.countRuns({ entity, project, filters }, controller.signal).then(
      ({ count }) => {
        s.count = count;
        s.counted = count;
        s.wanted = Math.max(s.wanted, Math.min(count, 50));
        bump();
        s.load();
      },
      (err) => err.name !== "AbortError" && setError(err.message),
    );

    const poll = async () => {
      if (document.hidden) return;
      const byId = new Map(s.runs.map((run, i) => [run.storage_id, i]));
      let cursor = null;
      let changed = false;
      while (s.runs.length > 0) {
        const page = await api.queryRuns(
          { ...body, filters: { $and: [filters, { updated_at: { $gt: s.since } }] }, order: "+updated_at", per_page: 500, cursor },
          controller.signal,
        );
        for (const run of page.items) {
          s.since = Math.max(s.since, run.updated_at);
          const at = byId.get(run.storage_id);
          if (at !== undefined) {
            s.runs[at] = run;
            changed = true;
          }
        }
        cursor = page.next_cursor;
        if (!cursor) break;
      }
      const { count } = await api.countRuns({ entity, project, filters }, controller.signal);
      if (count !== s.counted) {
        s.counted = count;
        changed = true;
      }
      if (changed) bump();
    };
    const timer = setInterval(() => poll().catch(() => {}), POLL_MS);
    return () => {
      clearInterval(timer);
      controller.abort();
    };
  }, [key]);

  const rows = useMemo(() => {
    const s = state.current;
    return {
      count: s ? s.count : 0,
      rowAt: (i) => (s && s.runs[i] ? { kind: "run", run: s.runs[i] } : undefined),
      want: (last) => {
        if (!s || last <= s.wanted) return;
        s.wanted = last;
        s.load();
      },
    };
  }, [version, key]);
  const s = state.current;
  const added = s ? Math.max(0, s.counted - s.count) : 0;
  const showAdded = () => setGeneration((g) => g + 1);
  return { rows, error, count: s ? s.count : null, runs: s ? s.runs : [], added, showAdded };
}
