/**
 * A stream run's dashboard: the tick rate and its jitter, each stage's latency, and the items
 * each stage dropped (its queue was full) or missed (past its deadline). Polled every second
 * while the stream is live.
 */
import type { RunDetail, StreamStats } from "../api";
import { LineChart, Stat } from "../charts";
import { Loading, NotFound, Problem, RunHeader } from "../components";
import { count, real, seconds } from "../format";
import { usePoll } from "../hooks";

export function StreamPage(props: { id: string }) {
  const path = `/api/runs/${encodeURIComponent(props.id)}`;
  const run = usePoll<RunDetail>(path, 5000, (d) => d.run.status === "running");
  const stream = usePoll<StreamStats>(`${path}/stream`, 1000, (s) => s.live || !run.data || run.data.run.status === "running");

  if (run.error?.status === 404 || stream.error?.status === 404) return <NotFound id={props.id} />;
  if (!run.data) return run.error ? <Problem message={run.error.message} /> : <Loading />;
  const s = stream.data;
  const stages = s ? Object.entries(s.stages).sort((a, b) => a[0].localeCompare(b[0])) : [];
  const drops = stages.reduce((n, [, st]) => n + st.drops, 0);
  const misses = stages.reduce((n, [, st]) => n + st.misses, 0);
  const times = s?.series.map((p) => p.t) ?? [];
  return (
    <section class="stream" data-live={s?.live ? "1" : "0"}>
      <RunHeader run={run.data.run} tab="stream" live={run.data.live || s?.live} />
      {stream.error ? <Problem message={`Could not load the stream's numbers: ${stream.error.message}`} /> : null}
      {s === null && !stream.error ? <Loading /> : null}
      {s !== null ? (
        <>
          <div class="stats" aria-label="Stream numbers">
            <Stat label="Rate" metric="rate" raw={s.rate} value={s.rate === null ? "–" : `${real(s.rate, 1)} Hz`} />
            <Stat label="Jitter p50" metric="jitter-p50" raw={s.jitter.p50} value={seconds(s.jitter.p50)} />
            <Stat label="Jitter p99" metric="jitter-p99" raw={s.jitter.p99} value={seconds(s.jitter.p99)} />
            <Stat label="Dropped" metric="drops" raw={drops} value={count(drops)} tone={drops ? "warn" : ""} />
            <Stat label="Missed deadlines" metric="misses" raw={misses} value={count(misses)} tone={misses ? "bad" : ""} />
          </div>
          <div class="charts">
            <LineChart title="Rate" metric="rate" times={times} format={(v) => `${real(v, v < 10 ? 1 : 0)} Hz`}
              series={[{ label: "Hz", colour: "#4e79a7", values: s.series.map((p) => p.rate) }]} />
            <LineChart title="Jitter" metric="jitter" times={times} format={(v) => seconds(v)}
              series={[{ label: "jitter", colour: "#f28e2b", values: s.series.map((p) => p.jitter) }]} />
          </div>
          <div class="card">
            <table class="grid compact" data-testid="stages">
              <caption>Stages</caption>
              <thead>
                <tr>
                  <th scope="col">Stage</th>
                  <th scope="col" class="num">Latency p50</th>
                  <th scope="col" class="num">Latency p99</th>
                  <th scope="col" class="num">Dropped</th>
                  <th scope="col" class="num">Missed</th>
                </tr>
              </thead>
              <tbody>
                {stages.map(([name, st]) => (
                  <tr key={name} data-stage={name}>
                    <th scope="row" class="mono">{name}</th>
                    <td class="num">{seconds(st.p50)}</td>
                    <td class="num">{seconds(st.p99)}</td>
                    <td class={st.drops ? "num warn" : "num"}>{count(st.drops)}</td>
                    <td class={st.misses ? "num bad" : "num"}>{count(st.misses)}</td>
                  </tr>
                ))}
                {stages.length === 0 ? <tr><td colSpan={5} class="empty">No stage has reported yet.</td></tr> : null}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}
