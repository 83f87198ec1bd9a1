/**
 * The UI's HTTP API (served by legato.ui under the base path B) and its JSON shapes.
 *
 * B comes from `<meta name="legato-base">`, which the server writes into the page: "" for
 * `legato ui`, "/ui" when `legato serve` mounts the UI. Every link and API call is prefixed
 * with it. A page the server answered with 404 carries `<meta name="legato-status" content="404">`.
 */

export type Status = "pending" | "running" | "ok" | "failed" | "retried" | "cached";

export interface Run {
  id: string;
  pipeline: string;
  status: string;
  mode: string | null;
  started: number | null;
  finished: number | null;
  duration: number | null;
  done: number;
  failed: number;
  recorded: number;
  total: number | null;
  live: boolean;
  error?: string | null;
  target?: string | null;
  host?: string | null;
  pid?: number | null;
}

export interface RunsPage {
  runs: Run[];
  next: string | null;
  total: number | null;
  pipelines: string[];
  statuses: string[];
}

export interface BatchStats {
  count: number;
  mean: number | null;
  max: number | null;
  sizes: Record<string, number>;
}

export interface NodeStats {
  status: Status;
  count: number;
  ok: number;
  failed: number;
  cached: number;
  retries: number;
  running: number;
  p50: number | null;
  p95: number | null;
  batch?: BatchStats | null;
}

export type Source = { node: string | null; port: string } | { const: unknown } | { const_repr: string };

export interface GraphNode {
  id: string;
  kind: string;
  location?: string | null;
  inputs: Record<string, Source>;
  component?: { name: string; executor?: string; batch?: { max_size: number } | null } | null;
  body?: PipelineGraph;
  orelse?: PipelineGraph;
}

export interface PipelineGraph {
  name: string;
  inputs: { name: string; type: string }[];
  nodes: GraphNode[];
  outputs: Record<string, Source>;
}

export interface RunDetail {
  run: Run;
  graph: PipelineGraph | null;
  nodes: Record<string, NodeStats>;
  live: boolean;
}

export interface Failure {
  item: number;
  attempt: number;
  error: string;
  traceback: string | null;
  inputs: unknown;
  retried: boolean;
}

export interface FailureGroup {
  type: string;
  node: string;
  location: string | null;
  message: string;
  count: number;
  failures: Failure[];
}

export interface Timeline {
  t0: number;
  t1: number;
  lanes: string[];
  nodes: string[];
  bars: {
    lane: number[];
    node: number[];
    item: number[];
    attempt: number[];
    start: number[];
    end: number[];
    status: number[];
  };
}

export interface ServiceStats {
  live: boolean;
  window: number;
  rate: number;
  queue_depth: number | null;
  latency: { p50: number | null; p99: number | null };
  batch_sizes: Record<string, number>;
  responses: Record<string, number>;
  series: { t: number; rate: number; p50: number | null; p99: number | null; queue_depth: number | null }[];
}

export interface StreamStats {
  live: boolean;
  rate: number | null;
  jitter: { p50: number | null; p99: number | null };
  stages: Record<string, { p50: number | null; p99: number | null; drops: number; misses: number }>;
  series: { t: number; rate: number | null; jitter: number | null }[];
  stats: unknown;
}

function meta(name: string): string | null {
  const el = document.querySelector(`meta[name="${name}"]`);
  return el ? el.getAttribute("content") : null;
}

/** The base path B, without a trailing slash ("" at the root). */
export const base: string = (meta("legato-base") ?? "").replace(/\/+$/, "");

/** True when the server answered this page with 404 (an unknown run). */
export const pageNotFound: boolean = meta("legato-status") === "404";

/** An API or transport error; `status` is the HTTP status (0: no answer). */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** GET B + path as JSON; throws ApiError on a non-2xx answer. */
export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(base + path, { signal, headers: { Accept: "application/json" } });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, `no answer from the server (${String(err)})`);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = (await response.json()) as { detail?: unknown };
      if (typeof body.detail === "string") detail = body.detail;
    } catch {
      /* not JSON: keep the status text */
    }
    throw new ApiError(response.status, detail);
  }
  return (await response.json()) as T;
}

/** `refine[2]/score` -> `refine/score`: the path NodeStats are keyed by. */
export function nodePath(executionPath: string): string {
  return executionPath.replace(/\[\d+\]/g, "");
}
