/**
 * A serve run's dashboard: requests per second, queue depth, latency (p50, p99), the
 * batch-size histogram and the responses by HTTP status (429: refused at admission, 504: past
 * the deadline). Polled every second while the service is live.
 */
import type { RunDetail, ServiceStats } from "../api";
import { Histogram, LineChart, Stat } from "../charts";
import { Loading, NotFound, Problem, RunHeader } from "../components";
import { count, real, seconds } from "../format";
import { usePoll } from "../hooks";

export function ServicePage(props: { id: string }) {
  const path = `/api/runs/${encodeURIComponent(props.id)}`;
  const run = usePoll<RunDetail>(path, 5000, (d) => d.run.status === "running");
  const service = usePoll<ServiceStats>(`${path}/service`, 1000, (s) => s.live || !run.data || run.data.run.status === "running");

  if (run.error?.status === 404 || service.error?.status === 404) return <NotFound id={props.id} />;
  if (!run.data) return run.error ? <Problem message={run.error.message} /> : <Loading />;
  const s = service.data;
  const times = s?.series.map((p) => p.t) ?? [];
  const responses = s?.responses ?? {};
  const total = Object.values(responses).reduce((a, b) => a + b, 0);
  const ok = Object.entries(responses).filter(([code]) => code.startsWith("2")).reduce((a, [, n]) => a + n, 0);
  return (
    <section class="service" data-live={s?.live ? "1" : "0"}>
      <RunHeader run={run.data.run} tab="service" live={run.data.live || s?.live} />
      {service.error ? <Problem message={`Could not load the service's numbers: ${service.error.message}`} /> : null}
      {s === null && !service.error ? <Loading /> : null}
      {s !== null ? (
        <>
          <div class="stats" aria-label="Service numbers">
            <Stat label={`Requests/s (last ${Math.round(s.window)} s)`} metric="rate" raw={s.rate} value={real(s.rate, 1)} />
            <Stat label="Queue depth" metric="queue-depth" raw={s.queue_depth} value={count(s.queue_depth)} />
            <Stat label="Latency p50" metric="p50" raw={s.latency.p50} value={seconds(s.latency.p50)} />
            <Stat label="Latency p99" metric="p99" raw={s.latency.p99} value={seconds(s.latency.p99)} />
            <Stat label="Responses" metric="responses" raw={total} value={`${count(total)}`} />
            <Stat label="2xx" metric="ok" raw={ok} value={count(ok)} />
            <Stat label="429 refused" metric="429" raw={responses["429"] ?? 0} value={count(responses["429"] ?? 0)} tone={responses["429"] ? "warn" : ""} />
            <Stat label="504 too late" metric="504" raw={responses["504"] ?? 0} value={count(responses["504"] ?? 0)} tone={responses["504"] ? "bad" : ""} />
          </div>
          <div class="charts">
            <LineChart title="Requests per second" metric="rate" times={times} format={(v) => real(v, v < 10 ? 1 : 0)}
              series={[{ label: "req/s", colour: "#4e79a7", values: s.series.map((p) => p.rate) }]} />
            <LineChart title="Latency" metric="latency" times={times} format={(v) => seconds(v)}
              series={[
                { label: "p50", colour: "#59a14f", values: s.series.map((p) => p.p50) },
                { label: "p99", colour: "#f28e2b", values: s.series.map((p) => p.p99) },
              ]} />
            <LineChart title="Queue depth" metric="queue-depth" times={times} format={(v) => real(v, 0)} integer
              series={[{ label: "queued", colour: "#b07aa1", values: s.series.map((p) => p.queue_depth) }]} />
            <Histogram title="Batch sizes" metric="batch-sizes" counts={s.batch_sizes} unit=" per batch" />
          </div>
          <div class="card">
            <table class="grid compact" data-testid="responses">
              <caption>Responses by HTTP status</caption>
              <thead><tr><th scope="col">Status</th><th scope="col" class="num">Responses</th></tr></thead>
              <tbody>
                {Object.entries(responses).sort().map(([code, n]) => (
                  <tr key={code}><th scope="row">{code}</th><td class="num">{count(n)}</td></tr>
                ))}
                {total === 0 ? <tr><td colSpan={2} class="empty">No requests yet.</td></tr> : null}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}
