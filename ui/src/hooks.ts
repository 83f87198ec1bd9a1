/** Data hooks: fetch once, or again every `every` ms while `keepGoing` says so. */
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, get } from "./api";

export interface Fetched<T> {
  data: T | null;
  error: ApiError | null;
  /** Fetch again now (the next poll is scheduled from this answer). */
  refresh: () => void;
}

/**
 * GET `path` now and, while `keepGoing(data)` is true, every `every` ms after each answer
 * (never two requests at once). A new `path` starts over; unmounting stops everything.
 */
export function usePoll<T>(path: string | null, every: number, keepGoing: (data: T) => boolean): Fetched<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const kick = useRef<() => void>(() => undefined);
  const goOn = useRef(keepGoing);
  goOn.current = keepGoing;

  useEffect(() => {
    if (path === null) return undefined;
    let stopped = false;
    let timer: number | undefined;
    let inFlight: AbortController | null = null;
    const once = async () => {
      window.clearTimeout(timer);
      inFlight?.abort();
      const controller = new AbortController();
      inFlight = controller;
      try {
        const answer = await get<T>(path, controller.signal);
        if (stopped || controller.signal.aborted) return;
        setData(answer);
        setError(null);
        if (goOn.current(answer)) timer = window.setTimeout(once, every);
      } catch (err) {
        if (stopped || controller.signal.aborted) return;
        const problem = err instanceof ApiError ? err : new ApiError(0, String(err));
        setError(problem);
        if (problem.status !== 404) timer = window.setTimeout(once, Math.max(every, 2000));
      }
    };
    kick.current = () => void once();
    void once();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      inFlight?.abort();
    };
  }, [path, every]);

  return { data, error, refresh: () => kick.current() };
}
