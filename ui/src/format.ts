/** Numbers and times as people read them (pure functions). */

/** Seconds as "850 µs", "12.3 ms", "4.20 s", "3 min 05 s", "2 h 10 min". */
export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined || !isFinite(value)) return "–";
  const abs = Math.abs(value);
  if (abs === 0) return "0 s";
  if (abs < 1e-3) return `${(value * 1e6).toFixed(0)} µs`;
  if (abs < 1) return `${(value * 1e3).toFixed(abs < 0.1 ? 1 : 0)} ms`;
  if (abs < 60) return `${value.toFixed(abs < 10 ? 2 : 1)} s`;
  if (abs < 3600) {
    const m = Math.floor(abs / 60);
    return `${m} min ${String(Math.floor(abs - m * 60)).padStart(2, "0")} s`;
  }
  const h = Math.floor(abs / 3600);
  return `${h} h ${String(Math.floor((abs - h * 3600) / 60)).padStart(2, "0")} min`;
}

/** An epoch time (s) as a local date and time, "2026-11-02 14:03:07". */
export function when(epoch: number | null | undefined): string {
  if (epoch === null || epoch === undefined) return "–";
  const d = new Date(epoch * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** An integer with thousands separators; "–" for null. */
export function count(value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  return value.toLocaleString("en-US");
}

/** A rate or other real with a few significant digits. */
export function real(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !isFinite(value)) return "–";
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** "a1b2c3d4e5f6..." -> "a1b2c3d4" for tables; the full id stays in titles. */
export function shortId(id: string): string {
  return id.length > 12 ? id.slice(0, 8) : id;
}
