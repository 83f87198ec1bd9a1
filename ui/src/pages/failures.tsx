/**
 * A run's failures, grouped by error type and place (node, file:line), each group expandable
 * to its failures: the item, the attempt, the traceback and the item's inputs.
 */
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, type FailureGroup } from "../api";
import { Problem } from "../components";
import { count } from "../format";

function pretty(value: unknown): string {
  if (value === null || value === undefined) return "(not recorded)";
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** `version` changes when the failures may have: a new fetch then. */
export function Failures(props: { id: string; version: string }) {
  const [groups, setGroups] = useState<FailureGroup[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    get<{ groups: FailureGroup[] }>(`/api/runs/${encodeURIComponent(props.id)}/failures`, controller.signal)
      .then((answer) => {
        setGroups(answer.groups);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(err instanceof ApiError ? err.message : String(err));
      });
    return () => controller.abort();
  }, [props.id, props.version]);

  return (
    <div class="card failures" data-testid="failures">
      <h2>Failed attempts {groups ? <span class="muted">({count(groups.reduce((n, g) => n + g.count, 0))}, retried ones included)</span> : null}</h2>
      {error ? <Problem message={`Could not load the failures: ${error}`} /> : null}
      {groups && groups.length === 0 ? <p class="muted">No failures.</p> : null}
      {groups?.map((group, g) => (
        <details key={`${group.type}@${group.node}@${group.location}`} class="failure-group" data-failure-type={group.type} open={g === 0 && groups.length === 1}>
          <summary>
            <span class="err-type">{group.type}</span>
            <span class="mono">{group.node}</span>
            {group.location ? <span class="mono muted">{group.location}</span> : null}
            <span class="count">×{count(group.count)}</span>
            <span class="message">{group.message}</span>
          </summary>
          {group.failures.map((f, i) => (
            <details key={i} class="failure">
              <summary>item {f.item} · attempt {f.attempt}{f.retried ? " · retried" : ""} · <span class="message">{f.error}</span></summary>
              <div class="failure-body">
                <h3>Traceback</h3>
                <pre>{f.traceback ?? "(no traceback recorded)"}</pre>
                <h3>Inputs</h3>
                <pre>{pretty(f.inputs)}</pre>
              </div>
            </details>
          ))}
          {group.count > group.failures.length ? <p class="muted">Showing {group.failures.length} of {count(group.count)}.</p> : null}
        </details>
      ))}
    </div>
  );
}
