/**
 * A run's timeline: one lane per worker, or per node with "aggregate" (for map runs, where a
 * long history is easier read per node). Wheel zooms around the pointer, drag pans,
 * double-click resets; hovering a bar tells its node, item, attempt and duration.
 * For tests, `window.__legatoTimeline` exposes zoom, pan, reset and the frame times.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { RunDetail, Timeline } from "../api";
import { Loading, NotFound, Problem, RunHeader } from "../components";
import { count, seconds } from "../format";
import { usePoll } from "../hooks";
import { navigate } from "../router";
import { type Hit, STATUS_CACHED, STATUS_FAILED, STATUS_RETRIED, TimelineCanvas } from "../timeline/canvas";

const PALETTE = [
  "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948",
  "#9c755f", "#ff9da7", "#86bcb6", "#8cd17d", "#a0cbe8", "#d4a6c8",
];

/** A distinct colour for node index i: the palette, then golden-angle hues. */
export function colour(i: number): string {
  if (i < PALETTE.length) return PALETTE[i];
  return `hsl(${Math.round((i * 137.508) % 360)}, 45%, 55%)`;
}

const STATUS_TEXT = ["ok", "failed", "failed, then retried", "cached"];

declare global {
  interface Window {
    __legatoTimeline?: {
      zoom: (factor: number, x?: number) => void;
      pan: (dx: number) => void;
      reset: () => void;
      view: () => [number, number];
      frames: number[];
    };
  }
}

function Chart(props: { data: Timeline }) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const view = useRef<TimelineCanvas | null>(null);
  const [hit, setHit] = useState<Hit | null>(null);
  const colours = useMemo(() => props.data.nodes.map((_, i) => colour(i)), [props.data]);

  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return undefined;
    const timeline = new TimelineCanvas(canvas, setHit);
    view.current = timeline;
    window.__legatoTimeline = {
      zoom: (factor, x) => timeline.zoom(factor, x),
      pan: (dx) => timeline.pan(dx),
      reset: () => timeline.reset(),
      view: () => timeline.view(),
      frames: timeline.frames,
    };
    return () => {
      timeline.destroy();
      view.current = null;
      delete window.__legatoTimeline;
    };
  }, []);
  useEffect(() => {
    view.current?.setData(props.data, colours);
  }, [props.data, colours]);

  const bars = props.data.bars;
  const tip = hit ? (
    <div class="tooltip" role="status" style={{ left: `${hit.x + 14}px`, top: `${hit.y + 14}px` }}>
      <strong>{props.data.nodes[bars.node[hit.index]]}</strong>
      <div>item {bars.item[hit.index]} · attempt {bars.attempt[hit.index]}</div>
      <div>{seconds(bars.end[hit.index] - bars.start[hit.index])} · {STATUS_TEXT[bars.status[hit.index]] ?? "?"}</div>
      <div class="muted">{props.data.lanes[bars.lane[hit.index]]} · at {seconds(bars.start[hit.index])}</div>
    </div>
  ) : null;
  return (
    <>
      <ul class="legend nodes" aria-label="Node colours">
        {props.data.nodes.map((name, i) => (
          <li key={name}><span class="swatch" style={{ background: colours[i] }} />{name}</li>
        ))}
        <li><span class="swatch hatched" />retried</li>
        <li><span class="swatch outlined" />failed</li>
        <li><span class="swatch faded" />cached</li>
      </ul>
      <div class="timeline-wrap">
        <canvas ref={canvasRef} class="timeline" data-testid="timeline" aria-label={`Timeline of ${count(bars.start.length)} node executions`} role="img" />
        {tip}
      </div>
      <div class="timeline-help muted">
        Wheel: zoom · drag: pan · double-click: reset ·{" "}
        <button type="button" class="link" onClick={() => view.current?.reset()}>Reset zoom</button>
      </div>
    </>
  );
}

export function TimelinePage(props: { id: string; query: URLSearchParams }) {
  const aggregate = props.query.get("aggregate") === "1";
  const runPath = `/api/runs/${encodeURIComponent(props.id)}`;
  const run = usePoll<RunDetail>(runPath, 2000, (d) => d.run.status === "running");
  const running = run.data?.run.status === "running";
  const timeline = usePoll<Timeline>(`${runPath}/timeline?aggregate=${aggregate ? 1 : 0}`, 3000, () => running);

  if (run.error?.status === 404 || timeline.error?.status === 404) return <NotFound id={props.id} />;
  if (!run.data) return run.error ? <Problem message={run.error.message} /> : <Loading />;
  const data = timeline.data;
  const failed = data ? data.bars.status.filter((s) => s === STATUS_FAILED).length : 0;
  const retried = data ? data.bars.status.filter((s) => s === STATUS_RETRIED).length : 0;
  const cached = data ? data.bars.status.filter((s) => s === STATUS_CACHED).length : 0;
  return (
    <section class="timeline-page">
      <RunHeader run={run.data.run} tab="timeline" live={run.data.live} />
      <div class="card">
        <div class="card-head">
          <h2>Timeline</h2>
          {data ? (
            <span class="muted">
              {count(data.bars.start.length)} executions on {count(data.lanes.length)} {aggregate ? "nodes" : "workers"}
              {failed ? ` · ${count(failed)} failed` : ""}{retried ? ` · ${count(retried)} retried` : ""}{cached ? ` · ${count(cached)} cached` : ""}
            </span>
          ) : null}
          <label class="toggle">
            <input
              type="checkbox"
              name="aggregate"
              checked={aggregate}
              onChange={(e) => navigate(`/runs/${encodeURIComponent(props.id)}/timeline${e.currentTarget.checked ? "?aggregate=1" : ""}`, { replace: true })}
            />
            Aggregate: one lane per node
          </label>
        </div>
        {timeline.error ? <Problem message={`Could not load the timeline: ${timeline.error.message}`} /> : null}
        {data === null && !timeline.error ? <Loading /> : null}
        {data !== null && data.bars.start.length === 0 ? <p class="muted">No node has run yet.</p> : null}
        {data !== null ? <Chart data={data} /> : null}
      </div>
    </section>
  );
}
