/**
 * The runs list: newest first, filtered by pipeline, status and mode, paged with the API's
 * keyset cursor. The URL carries the filters and the cursor (`?pipeline=&status=&mode=&before=`),
 * so a page can be reloaded or shared; the cursors of the newer pages visited ride in the
 * history entry's state, which is how "Newer" steps back.
 */
import type { RunsPage as Page } from "../api";
import { Badge, Link, Loading, Problem } from "../components";
import { count, seconds, shortId, when } from "../format";
import { usePoll } from "../hooks";
import { navigate } from "../router";

const FILTERS = ["pipeline", "status", "mode"] as const;
const MODES = ["run", "map", "stream", "serve"];

function listPath(query: URLSearchParams): string {
  const api = new URLSearchParams();
  for (const key of [...FILTERS, "before"]) {
    const value = query.get(key);
    if (value) api.set(key, value);
  }
  api.set("limit", "50");
  return `/api/runs?${api.toString()}`;
}

function go(query: URLSearchParams, trail: string[]): void {
  const text = query.toString();
  navigate(`/runs${text ? `?${text}` : ""}`, { state: { trail } });
}

export function RunsPage(props: { query: URLSearchParams; state: unknown }) {
  const { query } = props;
  const trail: string[] = Array.isArray((props.state as { trail?: unknown } | null)?.trail)
    ? ((props.state as { trail: string[] }).trail)
    : [];
  const firstPage = !query.get("before");
  // The first page refreshes itself every 3 s, so new and running runs show up.
  const { data, error } = usePoll<Page>(listPath(query), 3000, () => firstPage);

  const setFilter = (key: string, value: string) => {
    const next = new URLSearchParams(query);
    if (value) next.set(key, value);
    else next.delete(key);
    next.delete("before");
    go(next, []);
  };
  const older = () => {
    if (!data?.next) return;
    const next = new URLSearchParams(query);
    next.set("before", data.next);
    go(next, [...trail, query.get("before") ?? ""]);
  };
  const newer = () => {
    const next = new URLSearchParams(query);
    const previous = trail.length > 0 ? trail[trail.length - 1] : "";
    if (previous) next.set("before", previous);
    else next.delete("before");
    go(next, trail.slice(0, -1));
  };

  const pipelines = data?.pipelines ?? [];
  const statuses = data?.statuses ?? [];
  const option = (value: string, current: string | null) => (
    <option key={value} value={value} selected={value === (current ?? "")}>{value}</option>
  );
  return (
    <section class="runs">
      <div class="page-title">
        <h1>Runs</h1>
        {data?.total !== null && data?.total !== undefined ? <span class="muted">{count(data.total)} in all</span> : null}
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Pipeline
          <select name="pipeline" onChange={(e) => setFilter("pipeline", e.currentTarget.value)}>
            <option value="" selected={!query.get("pipeline")}>all</option>
            {[...new Set([...pipelines, ...(query.get("pipeline") ? [query.get("pipeline")!] : [])])].map((p) => option(p, query.get("pipeline")))}
          </select>
        </label>
        <label>
          Status
          <select name="status" onChange={(e) => setFilter("status", e.currentTarget.value)}>
            <option value="" selected={!query.get("status")}>all</option>
            {[...new Set([...statuses, ...(query.get("status") ? [query.get("status")!] : [])])].map((s) => option(s, query.get("status")))}
          </select>
        </label>
        <label>
          Mode
          <select name="mode" onChange={(e) => setFilter("mode", e.currentTarget.value)}>
            <option value="" selected={!query.get("mode")}>all</option>
            {MODES.map((m) => option(m, query.get("mode")))}
          </select>
        </label>
        {FILTERS.some((k) => query.get(k)) ? (
          <button type="button" class="link" onClick={() => go(new URLSearchParams(), [])}>Clear filters</button>
        ) : null}
      </form>
      {error ? <Problem message={`Could not list the runs: ${error.message}`} /> : null}
      {data === null && !error ? <Loading /> : null}
      {data !== null ? (
        <>
          <table class="grid" data-testid="runs">
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Pipeline</th>
                <th scope="col">Status</th>
                <th scope="col">Mode</th>
                <th scope="col">Started</th>
                <th scope="col" class="num">Duration</th>
                <th scope="col" class="num">Done</th>
                <th scope="col" class="num">Failed</th>
                <th scope="col" class="num">Recorded</th>
              </tr>
            </thead>
            <tbody>
              {data.runs.map((run) => (
                <tr key={run.id} data-run={run.id}>
                  <td><Link to={`/runs/${encodeURIComponent(run.id)}`} class="mono">{shortId(run.id)}</Link></td>
                  <td>{run.pipeline}</td>
                  <td><Badge status={run.status} />{run.live ? <span class="live small">live</span> : null}</td>
                  <td>{run.mode ?? "–"}</td>
                  <td class="nowrap">{when(run.started)}</td>
                  <td class="num">{seconds(run.duration)}</td>
                  <td class="num">{count(run.done)}</td>
                  <td class={run.failed > 0 ? "num bad" : "num"}>{count(run.failed)}</td>
                  <td class="num">{count(run.recorded)}{run.total !== null ? ` / ${count(run.total)}` : ""}</td>
                </tr>
              ))}
              {data.runs.length === 0 ? (
                <tr><td colSpan={9} class="empty">No runs{FILTERS.some((k) => query.get(k)) ? " match these filters" : " recorded yet"}.</td></tr>
              ) : null}
            </tbody>
          </table>
          <nav class="pager" aria-label="Pages">
            <button type="button" onClick={newer} disabled={firstPage}>← Newer</button>
            <button type="button" onClick={older} disabled={!data.next}>Older →</button>
          </nav>
        </>
      ) : null}
    </section>
  );
}
