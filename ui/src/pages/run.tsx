/**
 * A run: its graph coloured by node status, a table of the node statistics, and the failures.
 *
 * Live updates: when the run is in the server's engine (`live`), the page subscribes to
 * B/api/runs/ID/events (server-sent events) and applies each node event at once, fetching
 * the full statistics at most once a second; when the run is `running` elsewhere (another
 * process recording into the same store) it polls B/api/runs/ID every second until it ends.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, base, get, nodePath, type NodeStats, type RunDetail, type Status } from "../api";
import { Loading, NotFound, Problem, RunHeader } from "../components";
import { count, real, seconds } from "../format";
import { GraphView } from "../graph/view";
import { Failures } from "./failures";

const POLL_MS = 1000;

function useRunDetail(id: string): { detail: RunDetail | null; error: ApiError | null } {
  const [detail, setDetail] = useState<RunDetail | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const current = useRef<RunDetail | null>(null);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    let source: EventSource | null = null;
    let lastFetch = 0;
    let pending: number | undefined;
    let lastStatus = 0; // the HTTP status of the last failed fetch
    const path = `/api/runs/${encodeURIComponent(id)}`;

    const apply = (next: RunDetail) => {
      current.current = next;
      setDetail(next);
    };
    const fetchDetail = async (): Promise<RunDetail | null> => {
      lastFetch = performance.now();
      try {
        const answer = await get<RunDetail>(path);
        if (stopped) return null;
        apply(answer);
        setError(null);
        return answer;
      } catch (err) {
        if (stopped) return null;
        const problem = err instanceof ApiError ? err : new ApiError(0, String(err));
        lastStatus = problem.status;
        setError(problem);
        return null;
      }
    };
    const poll = async () => {
      const answer = await fetchDetail();
      if (stopped) return;
      if (answer === null ? lastStatus !== 404 : answer.run.status === "running") {
        timer = window.setTimeout(poll, POLL_MS);
      }
    };
    // At most one full fetch per POLL_MS while events stream in.
    const soon = () => {
      if (pending !== undefined) return;
      const wait = Math.max(0, POLL_MS - (performance.now() - lastFetch));
      pending = window.setTimeout(() => {
        pending = undefined;
        void fetchDetail();
      }, wait);
    };
    const patch = (update: (nodes: Record<string, NodeStats>) => Record<string, NodeStats>) => {
      const now = current.current;
      if (!now) return;
      apply({ ...now, nodes: update(now.nodes) });
    };
    const subscribe = () => {
      source = new EventSource(`${base}${path}/events`);
      source.addEventListener("node", (event) => {
        const data = JSON.parse((event as MessageEvent<string>).data) as { node: string; status: Status };
        const key = nodePath(data.node);
        patch((nodes) => {
          const before = nodes[key];
          const stats: NodeStats = before
            ? { ...before }
            : { status: "pending", count: 0, ok: 0, failed: 0, cached: 0, retries: 0, running: 0, p50: null, p95: null };
          if (data.status === "running") {
            stats.running += 1;
            stats.status = "running";
          } else {
            // One execution ended; others of the same node (map items) may still run.
            stats.running = Math.max(0, stats.running - 1);
            stats.status = stats.running > 0 ? "running" : data.status;
          }
          return { ...nodes, [key]: stats };
        });
        soon();
      });
      source.addEventListener("nodes", (event) => {
        const data = JSON.parse((event as MessageEvent<string>).data) as { nodes: Record<string, NodeStats> };
        patch((nodes) => ({ ...nodes, ...data.nodes }));
      });
      source.addEventListener("run", () => {
        source?.close();
        source = null;
        void fetchDetail().then((answer) => {
          // The run's row may lag its last event: poll until the store says it ended.
          if (!stopped && answer?.run.status === "running") timer = window.setTimeout(poll, POLL_MS);
        });
      });
      source.onerror = () => {
        // The stream broke (the run left the engine, or the server went away): poll instead.
        source?.close();
        source = null;
        if (!stopped) timer = window.setTimeout(poll, POLL_MS);
      };
    };

    void fetchDetail().then((answer) => {
      if (stopped || answer === null) return;
      if (answer.live && answer.run.status === "running") subscribe();
      else if (answer.run.status === "running") timer = window.setTimeout(poll, POLL_MS);
    });
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      window.clearTimeout(pending);
      source?.close();
    };
  }, [id]);

  return { detail, error };
}

function NodeTable(props: { nodes: Record<string, NodeStats> }) {
  const paths = Object.keys(props.nodes).sort();
  if (paths.length === 0) return <p class="muted">No node has run yet.</p>;
  return (
    <table class="grid compact" data-testid="node-stats">
      <caption>Node statistics</caption>
      <thead>
        <tr>
          <th scope="col">Node</th>
          <th scope="col">Status</th>
          <th scope="col" class="num">Calls</th>
          <th scope="col" class="num">OK</th>
          <th scope="col" class="num">Failed</th>
          <th scope="col" class="num">Retries</th>
          <th scope="col" class="num">Cached</th>
          <th scope="col" class="num">p50</th>
          <th scope="col" class="num">p95</th>
          <th scope="col">Batches</th>
        </tr>
      </thead>
      <tbody>
        {paths.map((path) => {
          const s = props.nodes[path];
          const batch = s.batch && s.batch.count > 0 ? s.batch : null;
          return (
            <tr key={path} data-node-row={path}>
              <th scope="row" class="mono">{path}</th>
              <td><span class={`badge st-${s.status}`}>{s.status}</span></td>
              <td class="num">{count(s.count)}</td>
              <td class="num">{count(s.ok)}</td>
              <td class={s.failed ? "num bad" : "num"}>{count(s.failed)}</td>
              <td class="num">{count(s.retries)}</td>
              <td class="num">{count(s.cached)}</td>
              <td class="num">{seconds(s.p50)}</td>
              <td class="num">{seconds(s.p95)}</td>
              <td>
                {batch
                  ? `${count(batch.count)} · mean ${real(batch.mean)} · max ${batch.max ?? "–"} · ` +
                    Object.entries(batch.sizes).sort((a, b) => Number(a[0]) - Number(b[0])).map(([size, n]) => `${size}×${n}`).join(" ")
                  : "–"}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

const LEGEND: Status[] = ["pending", "running", "ok", "retried", "failed", "cached"];

export function RunPage(props: { id: string }) {
  const { detail, error } = useRunDetail(props.id);
  if (error?.status === 404) return <NotFound id={props.id} />;
  if (!detail) return error ? <Problem message={`Could not load run ${props.id}: ${error.message}`} /> : <Loading />;
  const failures = detail.run.failed + Object.values(detail.nodes).reduce((n, s) => n + s.failed, 0);
  return (
    <section class="run" data-run-status={detail.run.status}>
      <RunHeader run={detail.run} tab="run" live={detail.live} />
      {error ? <Problem message={`Updates stopped: ${error.message}`} /> : null}
      <div class="card">
        <div class="card-head">
          <h2>Graph</h2>
          <ul class="legend" aria-label="Status colours">
            {LEGEND.map((s) => <li key={s}><span class={`swatch st-${s}`} />{s}</li>)}
          </ul>
        </div>
        {detail.graph ? <GraphView graph={detail.graph} stats={detail.nodes} /> : <p class="muted">This run recorded no pipeline graph (recorded by an older legato).</p>}
      </div>
      <div class="card">
        <NodeTable nodes={detail.nodes} />
      </div>
      <Failures id={props.id} version={`${failures}:${detail.run.status}`} />
    </section>
  );
}
