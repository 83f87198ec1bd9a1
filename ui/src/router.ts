/**
 * Client-side routes over real paths (History API): B/, B/runs, B/runs/ID,
 * B/runs/ID/timeline, B/runs/ID/service, B/runs/ID/stream. The server answers each of them
 * with the same page, so a reload or a shared link lands on the same view.
 */
import { useEffect, useState } from "preact/hooks";
import { base } from "./api";

export type Route =
  | { page: "runs" }
  | { page: "run" | "timeline" | "service" | "stream"; id: string }
  | { page: "unknown"; path: string };

/** The route of a path below the base (pure). */
export function parse(path: string): Route {
  const parts = path.split("/").filter((p) => p !== "").map(decodeURIComponent);
  if (parts.length === 0 || (parts.length === 1 && parts[0] === "runs")) return { page: "runs" };
  if (parts[0] === "runs" && parts.length === 2) return { page: "run", id: parts[1] };
  if (parts[0] === "runs" && parts.length === 3) {
    const sub = parts[2];
    if (sub === "timeline" || sub === "service" || sub === "stream") return { page: sub, id: parts[1] };
  }
  return { page: "unknown", path };
}

function here(): string {
  const path = window.location.pathname;
  return path.startsWith(base) ? path.slice(base.length) : path;
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((fn) => fn()));

/** Go to `to` (a path below the base, with an optional query), adding a history entry. */
export function navigate(to: string, options: { replace?: boolean; state?: unknown } = {}): void {
  const url = base + to;
  if (options.replace) window.history.replaceState(options.state ?? null, "", url);
  else window.history.pushState(options.state ?? null, "", url);
  listeners.forEach((fn) => fn());
  if (!options.replace) window.scrollTo(0, 0);
}

/** The current location below the base: path, query and the history entry's state. */
export interface Location {
  path: string;
  query: URLSearchParams;
  state: unknown;
}

export function useLocation(): Location {
  const read = (): Location => ({
    path: here(),
    query: new URLSearchParams(window.location.search),
    state: window.history.state,
  });
  const [location, setLocation] = useState<Location>(read);
  useEffect(() => {
    const update = () => setLocation(read());
    listeners.add(update);
    return () => {
      listeners.delete(update);
    };
  }, []);
  return location;
}

/** An href for a path below the base. */
export function href(to: string): string {
  return base + to;
}

/** A click handler that turns a plain left click on a link into client-side navigation. */
export function follow(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = (event.currentTarget as HTMLAnchorElement | null) ?? null;
  if (!anchor || anchor.target) return;
  const url = new URL(anchor.href);
  if (url.origin !== window.location.origin || !url.pathname.startsWith(base)) return;
  event.preventDefault();
  navigate(url.pathname.slice(base.length) + url.search);
}
