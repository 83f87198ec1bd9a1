/**
 * The run's graph as SVG: one box per node, coloured by its status and annotated with its
 * numbers; groups (map, loop, branch) drawn around their members. Each node's element carries
 * `data-node="PATH"` and `data-status="STATUS"`.
 */
import { useMemo } from "preact/hooks";
import type { NodeStats, PipelineGraph, Status } from "../api";
import { count, real, seconds } from "../format";
import { type Box, layout } from "./layout";

const MARGIN = 16;

/** A group's status: its own stats if it has them, else the most telling of its members'. */
export function groupStatus(members: string[], stats: Record<string, NodeStats>): Status {
  const seen = new Set(members.map((m) => stats[m]?.status ?? "pending"));
  for (const status of ["running", "failed", "retried", "ok", "cached"] as Status[]) {
    if (seen.has(status)) return status;
  }
  return "pending";
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function Node(props: { box: Box; stats: NodeStats | undefined }) {
  const { box, stats } = props;
  const status: Status = stats?.status ?? "pending";
  const lines: string[] = [];
  if (stats) {
    const counts = [`${count(stats.count)} call${stats.count === 1 ? "" : "s"}`];
    if (stats.failed) counts.push(`${count(stats.failed)} failed`);
    if (stats.retries) counts.push(`${count(stats.retries)} retried`);
    if (stats.cached) counts.push(`${count(stats.cached)} cached`);
    if (stats.running) counts.push(`${count(stats.running)} running`);
    lines.push(counts.join(" · "));
    const times = stats.p50 === null && stats.p95 === null ? [] : [`p50 ${seconds(stats.p50)}`, `p95 ${seconds(stats.p95)}`];
    if (stats.batch && stats.batch.count > 0) times.push(`batch ${real(stats.batch.mean)}/${stats.batch.max ?? "–"}`);
    lines.push(times.length ? times.join(" · ") : "no timings");
  } else {
    lines.push("not started");
  }
  const title = [
    box.path,
    box.component && box.component !== box.label ? `component ${box.component}` : null,
    box.location,
    stats ? `status ${status}; ${stats.count} calls, ${stats.ok} ok, ${stats.failed} failed, ${stats.cached} cached, ${stats.retries} retries` : "pending",
    stats?.batch && stats.batch.count > 0
      ? `batches: ${stats.batch.count}, sizes ${Object.entries(stats.batch.sizes).map(([s, n]) => `${s}×${n}`).join(", ")}`
      : null,
  ].filter(Boolean).join("\n");
  return (
    <g class={`node st-${status}`} data-node={box.path} data-status={status} transform={`translate(${box.x},${box.y})`}>
      <title>{title}</title>
      <rect width={box.w} height={box.h} rx={6} />
      <rect class="bar" width={6} height={box.h} rx={3} />
      <text x={14} y={20} class="name">{clip(box.label, 26)}</text>
      {lines.map((line, i) => (
        <text key={i} x={14} y={38 + i * 16} class="meta">{clip(line, 34)}</text>
      ))}
    </g>
  );
}

function Group(props: { box: Box; stats: Record<string, NodeStats> }) {
  const { box, stats } = props;
  const status = stats[box.path]?.status ?? groupStatus(box.members, stats);
  return (
    <g class={`group st-${status}`} data-node={box.path} data-status={status} transform={`translate(${box.x},${box.y})`}>
      <title>{`${box.label}${box.location ? `\n${box.location}` : ""}`}</title>
      <rect width={box.w} height={box.h} rx={8} />
      <text x={12} y={18} class="name">{box.label}</text>
      {box.captions.map((c) => (
        <text key={c.text} x={12} y={c.y + 10} class="caption">{c.text}</text>
      ))}
    </g>
  );
}

function Port(props: { box: Box }) {
  const { box } = props;
  return (
    <g class={`port ${box.kind}`} transform={`translate(${box.x},${box.y})`}>
      <rect width={box.w} height={box.h} rx={box.h / 2} />
      <text x={box.w / 2} y={box.h / 2 + 4} text-anchor="middle">{clip(box.label, 16)}</text>
    </g>
  );
}

export function GraphView(props: { graph: PipelineGraph; stats: Record<string, NodeStats> }) {
  const laid = useMemo(() => layout(props.graph), [props.graph]);
  const width = laid.width + 2 * MARGIN;
  const height = laid.height + 2 * MARGIN;
  return (
    <div class="graph-scroll">
      <svg
        class="graph"
        width={width}
        height={height}
        viewBox={`${-MARGIN} ${-MARGIN} ${width} ${height}`}
        role="img"
        aria-label={`Graph of ${props.graph.name}`}
        data-testid="graph"
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
          </marker>
        </defs>
        {laid.boxes.filter((b) => b.kind === "group").map((b) => <Group key={b.path} box={b} stats={props.stats} />)}
        <g class="edges">
          {laid.edges.map((e, i) => {
            const mid = (e.x1 + e.x2) / 2;
            return (
              <path key={i} d={`M${e.x1},${e.y1} C${mid},${e.y1} ${mid},${e.y2} ${e.x2 - 2},${e.y2}`} marker-end="url(#arrow)">
                <title>{e.label}</title>
              </path>
            );
          })}
        </g>
        {laid.boxes.filter((b) => b.kind === "node").map((b) => <Node key={b.path} box={b} stats={props.stats[b.path]} />)}
        {laid.boxes.filter((b) => b.kind === "input" || b.kind === "output").map((b) => <Port key={b.path} box={b} />)}
      </svg>
    </div>
  );
}
