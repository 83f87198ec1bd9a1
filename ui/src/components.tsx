/** Small pieces shared by the pages: links, status badges, the run header and its tabs. */
import type { ComponentChildren } from "preact";
import type { Run } from "./api";
import { seconds, when } from "./format";
import { follow, href } from "./router";

export function Link(props: { to: string; class?: string; children: ComponentChildren; "aria-current"?: "page" }) {
  return (
    <a href={href(props.to)} class={props.class} onClick={follow} aria-current={props["aria-current"]}>
      {props.children}
    </a>
  );
}

/** A run's or node's status as a coloured badge. */
export function Badge(props: { status: string }) {
  return <span class={`badge st-${props.status}`} data-status={props.status}>{props.status}</span>;
}

export function NotFound(props: { id?: string; what?: string }) {
  return (
    <section class="notfound" data-testid="not-found">
      <h1>{props.id !== undefined ? `Run ${props.id} not found` : `${props.what ?? "Page"} not found`}</h1>
      <p>
        The store has no such {props.id !== undefined ? "run" : "page"}. <Link to="/runs">Back to the runs</Link>.
      </p>
    </section>
  );
}

export function Problem(props: { message: string }) {
  return <div class="problem" role="alert">{props.message}</div>;
}

export function Loading() {
  return <div class="loading" aria-busy="true">Loading…</div>;
}

export type Tab = "run" | "timeline" | "service" | "stream";

/** The run's title line, facts and tabs (Graph, Timeline, and Service or Stream by mode). */
export function RunHeader(props: { run: Run; tab: Tab; live?: boolean }) {
  const { run, tab } = props;
  const tabs: [Tab, string, string][] = [
    ["run", "Graph", `/runs/${encodeURIComponent(run.id)}`],
    ["timeline", "Timeline", `/runs/${encodeURIComponent(run.id)}/timeline`],
  ];
  if (run.mode === "serve") tabs.push(["service", "Service", `/runs/${encodeURIComponent(run.id)}/service`]);
  if (run.mode === "stream") tabs.push(["stream", "Stream", `/runs/${encodeURIComponent(run.id)}/stream`]);
  return (
    <header class="run-header">
      <nav class="crumbs" aria-label="Breadcrumb">
        <Link to="/runs">Runs</Link> <span aria-hidden="true">/</span> <span>{run.pipeline}</span>
      </nav>
      <div class="title">
        <h1>
          {run.pipeline} <span class="run-id" title={run.id}>{run.id}</span>
        </h1>
        <Badge status={run.status} />
        {props.live ? <span class="live" title="This run is in the server's engine: updates stream in">live</span> : null}
      </div>
      <dl class="facts">
        <div><dt>Mode</dt><dd>{run.mode ?? "–"}</dd></div>
        <div><dt>Started</dt><dd>{when(run.started)}</dd></div>
        <div><dt>Duration</dt><dd>{seconds(run.duration)}</dd></div>
        <div><dt>Items</dt><dd>{run.done} done · {run.failed} failed · {run.recorded}{run.total !== null ? ` of ${run.total}` : ""} recorded</dd></div>
        {run.host ? <div><dt>Host</dt><dd>{run.host}{run.pid ? ` (pid ${run.pid})` : ""}</dd></div> : null}
      </dl>
      {run.error ? <Problem message={run.error} /> : null}
      <nav class="tabs" aria-label="Run views">
        {tabs.map(([key, label, to]) => (
          <Link key={key} to={to} class={key === tab ? "tab active" : "tab"} aria-current={key === tab ? "page" : undefined}>
            {label}
          </Link>
        ))}
      </nav>
    </header>
  );
}
