/**
 * The timeline's canvas renderer: one lane per worker (or per node), a bar per node execution.
 *
 * It stays smooth with tens of thousands of bars because a frame only touches what it shows:
 * - each lane's bars are sorted by start once, with a running maximum of their ends, so the
 *   first bar that can reach the view is found by binary search, and the scan stops at the
 *   first bar that starts after the view;
 * - bars narrower than a pixel are merged, per lane, with their neighbours in the same pixel
 *   columns into one rectangle (a dense stretch reads as a solid block, as it should);
 * - redraws are coalesced to one per animation frame, however many wheel or drag events come.
 * The canvas carries `data-bars` (bars in the data) and `data-drawn` (rectangles drawn in
 * the last frame); `frames` keeps each frame's drawing time in milliseconds.
 */
import type { Timeline } from "../api";

export const STATUS_OK = 0;
export const STATUS_FAILED = 1;
export const STATUS_RETRIED = 2;
export const STATUS_CACHED = 3;

const LABEL_W = 160;
const AXIS_H = 26;
const LANE_H = 22;
const BAR_PAD = 3;
const MAX_FRAMES = 2000;

interface Lane {
  order: Int32Array; // bar indices sorted by start
  start: Float64Array;
  end: Float64Array;
  reach: Float64Array; // reach[i] = max(end[order[0..i]])
}

/** A bar under the pointer, for the tooltip. */
export interface Hit {
  index: number;
  x: number;
  y: number;
}

/** A "nice" tick step (1, 2 or 5 times a power of ten) near `rough`. */
export function niceStep(rough: number): number {
  if (!(rough > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  const unit = rough / power;
  return (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10) * power;
}

function tickLabel(t: number, step: number): string {
  if (step >= 1) return `${t.toFixed(0)} s`;
  if (step >= 1e-3) return `${(t * 1e3).toFixed(step >= 0.01 ? 0 : 1)} ms`;
  return `${(t * 1e6).toFixed(0)} µs`;
}

export class TimelineCanvas {
  readonly frames: number[] = [];
  private data: Timeline | null = null;
  private colours: string[] = [];
  private lanes: Lane[] = [];
  private extent: [number, number] = [0, 1];
  private v0 = 0;
  private v1 = 1;
  private width = 800; // CSS pixels
  private scheduled = 0;
  private hatch: CanvasPattern | null = null;
  private drag: { x: number; id: number } | null = null;
  private touched = false; // the user zoomed or panned: new data keeps the view
  private readonly ctx: CanvasRenderingContext2D;
  private readonly observer: ResizeObserver;
  private readonly cleanups: (() => void)[] = [];

  constructor(private readonly canvas: HTMLCanvasElement, private readonly onHover: (hit: Hit | null) => void) {
    const ctx = canvas.getContext("2d", { alpha: false });
    if (!ctx) throw new Error("no 2D canvas context");
    this.ctx = ctx;
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(canvas.parentElement ?? canvas);
    const on = <K extends keyof HTMLElementEventMap>(type: K, fn: (e: HTMLElementEventMap[K]) => void, opts?: AddEventListenerOptions) => {
      canvas.addEventListener(type, fn as EventListener, opts);
      this.cleanups.push(() => canvas.removeEventListener(type, fn as EventListener));
    };
    on("wheel", (e) => {
      e.preventDefault();
      const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
      this.zoom(Math.exp(-delta * 0.0015), this.localX(e));
    }, { passive: false });
    on("pointerdown", (e) => {
      if (e.button !== 0) return;
      this.drag = { x: e.clientX, id: e.pointerId };
      canvas.setPointerCapture(e.pointerId);
      canvas.classList.add("dragging");
    });
    on("pointermove", (e) => {
      if (this.drag && this.drag.id === e.pointerId) {
        this.pan(e.clientX - this.drag.x);
        this.drag.x = e.clientX;
        this.onHover(null);
      } else {
        this.hover(e);
      }
    });
    const stop = (e: PointerEvent) => {
      if (this.drag && this.drag.id === e.pointerId) {
        this.drag = null;
        canvas.classList.remove("dragging");
      }
    };
    on("pointerup", stop);
    on("pointercancel", stop);
    on("pointerleave", () => this.onHover(null));
    on("dblclick", () => this.reset());
    this.resize();
  }

  destroy(): void {
    this.observer.disconnect();
    this.cleanups.forEach((fn) => fn());
    cancelAnimationFrame(this.scheduled);
  }

  /** New data (and the colour of each node index); the view resets to the whole run. */
  setData(data: Timeline, colours: string[]): void {
    this.data = data;
    this.colours = colours;
    const { lane, start, end } = data.bars;
    const perLane: number[][] = data.lanes.map(() => []);
    let last = 0;
    for (let i = 0; i < start.length; i++) {
      (perLane[lane[i]] ?? perLane[0] ?? (perLane[0] = [])).push(i);
      last = Math.max(last, end[i], start[i]);
    }
    this.lanes = perLane.map((indices) => {
      indices.sort((a, b) => start[a] - start[b]);
      const n = indices.length;
      const laneData: Lane = {
        order: Int32Array.from(indices),
        start: new Float64Array(n),
        end: new Float64Array(n),
        reach: new Float64Array(n),
      };
      let reach = -Infinity;
      for (let k = 0; k < n; k++) {
        const i = indices[k];
        laneData.start[k] = start[i];
        laneData.end[k] = Math.max(end[i], start[i]);
        reach = Math.max(reach, laneData.end[k]);
        laneData.reach[k] = reach;
      }
      return laneData;
    });
    const span = Math.max(data.t1 - data.t0, last, 1e-3);
    this.extent = [-span * 0.01, span * 1.01];
    this.canvas.dataset.bars = String(start.length);
    this.resize();
    if (this.touched) {
      this.clamp();
      this.request();
    } else {
      this.reset();
    }
  }

  /** Zoom in by `factor` (> 1 in, < 1 out) keeping the time under x (CSS px) in place. */
  zoom(factor: number, x: number = LABEL_W + (this.width - LABEL_W) / 2): void {
    if (!(factor > 0)) return;
    const plot = Math.max(1, this.width - LABEL_W);
    const frac = Math.min(1, Math.max(0, (x - LABEL_W) / plot));
    const at = this.v0 + frac * (this.v1 - this.v0);
    const full = this.extent[1] - this.extent[0];
    const range = Math.min(full, Math.max(1e-7, (this.v1 - this.v0) / factor));
    this.v0 = at - frac * range;
    this.v1 = this.v0 + range;
    this.touched = true;
    this.clamp();
    this.request();
  }

  /** Move the view by dx CSS pixels (positive: content moves right, earlier times show). */
  pan(dx: number): void {
    const plot = Math.max(1, this.width - LABEL_W);
    const shift = (-dx / plot) * (this.v1 - this.v0);
    this.v0 += shift;
    this.v1 += shift;
    this.touched = true;
    this.clamp();
    this.request();
  }

  reset(): void {
    this.touched = false;
    [this.v0, this.v1] = this.extent;
    this.request();
  }

  /** The visible time range, seconds since the run's t0. */
  view(): [number, number] {
    return [this.v0, this.v1];
  }

  private clamp(): void {
    const range = this.v1 - this.v0;
    if (this.v0 < this.extent[0]) [this.v0, this.v1] = [this.extent[0], this.extent[0] + range];
    if (this.v1 > this.extent[1]) [this.v0, this.v1] = [this.extent[1] - range, this.extent[1]];
  }

  private localX(e: MouseEvent): number {
    return e.clientX - this.canvas.getBoundingClientRect().left;
  }

  private resize(): void {
    const parent = this.canvas.parentElement;
    const width = Math.max(320, Math.floor(parent ? parent.clientWidth : 800));
    const height = AXIS_H + Math.max(1, this.lanes.length) * LANE_H + 6;
    const dpr = window.devicePixelRatio || 1;
    this.width = width;
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    this.request();
  }

  private request(): void {
    if (this.scheduled) return;
    this.scheduled = requestAnimationFrame(() => {
      this.scheduled = 0;
      this.draw();
    });
  }

  private pattern(): CanvasPattern | null {
    if (this.hatch) return this.hatch;
    const tile = document.createElement("canvas");
    tile.width = tile.height = 6;
    const t = tile.getContext("2d");
    if (!t) return null;
    t.strokeStyle = "rgba(255,255,255,0.85)";
    t.lineWidth = 1.5;
    t.beginPath();
    t.moveTo(0, 6);
    t.lineTo(6, 0);
    t.moveTo(-1, 1);
    t.lineTo(1, -1);
    t.moveTo(5, 7);
    t.lineTo(7, 5);
    t.stroke();
    this.hatch = this.ctx.createPattern(tile, "repeat");
    return this.hatch;
  }

  /** Draw one frame now; returns the number of rectangles drawn. */
  draw(): number {
    const began = performance.now();
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    const width = this.width;
    const height = this.canvas.height / dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, width, height);
    const plot = Math.max(1, width - LABEL_W);
    const v0 = this.v0;
    const scale = plot / (this.v1 - this.v0);

    // Time axis and grid.
    const step = niceStep((this.v1 - this.v0) / Math.max(1, plot / 90));
    ctx.font = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#f6f7f9";
    ctx.fillRect(0, 0, width, AXIS_H);
    ctx.strokeStyle = "#e3e6ea";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let t = Math.ceil(v0 / step) * step; t <= this.v1; t += step) {
      const x = Math.round(LABEL_W + (t - v0) * scale) + 0.5;
      ctx.moveTo(x, AXIS_H - 6);
      ctx.lineTo(x, height);
    }
    ctx.stroke();
    ctx.fillStyle = "#5b6470";
    ctx.textAlign = "left";
    for (let t = Math.ceil(v0 / step) * step; t <= this.v1; t += step) {
      const x = LABEL_W + (t - v0) * scale;
      if (x > LABEL_W + 2 && x < width - 30) ctx.fillText(tickLabel(Math.abs(t) < step / 1e6 ? 0 : t, step), x + 3, AXIS_H / 2);
    }

    let drawn = 0;
    const data = this.data;
    if (data) {
      const { node, status } = data.bars;
      const hatch = this.pattern();
      const x0Limit = LABEL_W;
      const x1Limit = width;
      const marks: number[] = []; // pixel x, status: pairs, per lane
      ctx.save();
      ctx.beginPath();
      ctx.rect(LABEL_W, AXIS_H, plot, height - AXIS_H);
      ctx.clip();
      for (let l = 0; l < this.lanes.length; l++) {
        const lane = this.lanes[l];
        const y = AXIS_H + l * LANE_H + BAR_PAD;
        const h = LANE_H - 2 * BAR_PAD;
        if (l % 2 === 1) {
          ctx.fillStyle = "#fafbfc";
          ctx.fillRect(LABEL_W, AXIS_H + l * LANE_H, plot, LANE_H);
        }
        // First bar whose running reach gets into the view.
        let lo = 0;
        let hi = lane.reach.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (lane.reach[mid] < v0) lo = mid + 1;
          else hi = mid;
        }
        // A run of sub-pixel bars of one colour, merged into one rectangle; one rectangle at
        // most per pixel column (the first bar's colour there), so a frame draws at most a
        // rectangle per lane and pixel column, plus the bars wider than a pixel.
        let mergeFrom = -1;
        let mergeTo = -1;
        let mergeColour = "";
        marks.length = 0;
        const flush = () => {
          if (mergeFrom < 0) return;
          ctx.fillStyle = mergeColour;
          ctx.fillRect(mergeFrom, y, mergeTo - mergeFrom, h);
          drawn++;
          mergeFrom = -1;
        };
        for (let k = lo; k < lane.start.length; k++) {
          const s = lane.start[k];
          if (s > this.v1) break;
          const e = lane.end[k];
          if (e < v0) continue;
          const i = lane.order[k];
          const x0 = Math.max(x0Limit - 1, LABEL_W + (s - v0) * scale);
          const x1 = Math.min(x1Limit + 1, LABEL_W + (e - v0) * scale);
          const colour = this.colours[node[i]] ?? "#8a94a3";
          const st = status[i];
          if (x1 - x0 < 1) {
            const px = Math.floor(x0);
            if ((st === STATUS_FAILED || st === STATUS_RETRIED) && marks[marks.length - 2] !== px) marks.push(px, st);
            if (mergeFrom >= 0 && px < mergeTo) {
              // This pixel column is drawn already; widen the run if the bar reaches further.
              if (colour === mergeColour) mergeTo = Math.max(mergeTo, Math.ceil(x1));
              continue;
            }
            if (mergeFrom >= 0 && colour === mergeColour && px <= mergeTo) {
              mergeTo = Math.max(px + 1, Math.ceil(x1));
              continue;
            }
            flush();
            mergeFrom = px;
            mergeTo = Math.max(px + 1, Math.ceil(x1));
            mergeColour = colour;
            continue;
          }
          flush();
          ctx.globalAlpha = st === STATUS_CACHED ? 0.45 : 1;
          ctx.fillStyle = colour;
          ctx.fillRect(x0, y, x1 - x0, h);
          ctx.globalAlpha = 1;
          if (st === STATUS_RETRIED && hatch) {
            ctx.fillStyle = hatch;
            ctx.fillRect(x0, y, x1 - x0, h);
            ctx.strokeStyle = "#c98a00";
            ctx.lineWidth = 1;
            ctx.strokeRect(x0 + 0.5, y + 0.5, Math.max(0, x1 - x0 - 1), h - 1);
          } else if (st === STATUS_FAILED) {
            ctx.strokeStyle = "#d43a3a";
            ctx.lineWidth = 1.5;
            ctx.strokeRect(x0 + 0.75, y + 0.75, Math.max(0, x1 - x0 - 1.5), h - 1.5);
          } else if (x1 - x0 > 3) {
            ctx.fillStyle = "rgba(255,255,255,0.6)";
            ctx.fillRect(x1 - 1, y, 1, h); // a hairline between back-to-back bars
          }
          drawn++;
        }
        flush();
        // Failed and retried sub-pixel bars: a tick above the merged rectangles.
        for (let m = 0; m < marks.length; m += 2) {
          ctx.fillStyle = marks[m + 1] === STATUS_FAILED ? "#d43a3a" : "#c98a00";
          ctx.fillRect(marks[m], y - 2, 2, h + 4);
          drawn++;
        }
      }
      ctx.restore();

      // Lane labels.
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, AXIS_H, LABEL_W, height - AXIS_H);
      ctx.fillStyle = "#2b3340";
      ctx.textAlign = "left";
      for (let l = 0; l < data.lanes.length; l++) {
        let label = data.lanes[l] || "executor";
        if (label.length > 24) label = `…${label.slice(-23)}`;
        ctx.fillText(label, 8, AXIS_H + l * LANE_H + LANE_H / 2);
      }
      ctx.strokeStyle = "#d5d9df";
      ctx.beginPath();
      ctx.moveTo(LABEL_W - 0.5, 0);
      ctx.lineTo(LABEL_W - 0.5, height);
      ctx.moveTo(0, AXIS_H - 0.5);
      ctx.lineTo(width, AXIS_H - 0.5);
      ctx.stroke();
    }

    this.canvas.dataset.drawn = String(drawn);
    this.frames.push(performance.now() - began);
    if (this.frames.length > MAX_FRAMES) this.frames.splice(0, this.frames.length - MAX_FRAMES);
    return drawn;
  }

  private hover(e: PointerEvent): void {
    const data = this.data;
    if (!data) return;
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    const l = Math.floor((y - AXIS_H) / LANE_H);
    const lane = this.lanes[l];
    if (x < LABEL_W || !lane) {
      this.onHover(null);
      return;
    }
    const scale = (this.width - LABEL_W) / (this.v1 - this.v0);
    const t = this.v0 + (x - LABEL_W) / scale;
    const slack = 2 / scale; // two pixels
    // The last bar starting before t + slack, then back while bars can still reach t.
    let lo = 0;
    let hi = lane.start.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (lane.start[mid] <= t + slack) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo - 1, steps = 0; k >= 0 && steps < 5000; k--, steps++) {
      if (lane.reach[k] < t - slack) break;
      if (lane.end[k] >= t - slack) {
        this.onHover({ index: lane.order[k], x, y });
        return;
      }
    }
    this.onHover(null);
  }
}
