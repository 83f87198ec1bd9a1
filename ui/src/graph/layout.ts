/**
 * Lay a pipeline graph out left to right, in layers (pure; no DOM).
 *
 * A node's layer is the length of the longest path from the graph's inputs to it, so every
 * edge points right. Within a layer, nodes keep their declaration order, then two sweeps
 * order each layer by the mean position of its sources (the barycentre heuristic), which
 * removes most crossings in the shapes pipelines have. A map, loop or branch node is a group:
 * its body (and a loop's `until`, a branch's `else`) is laid out the same way inside it, and
 * its nodes' paths are the execution paths with indices dropped: `outer/inner`,
 * `loop/until/inner`, `branch/then/inner`, `branch/else/inner`.
 */
import type { GraphNode, PipelineGraph, Source } from "../api";

export const NODE_W = 204;
export const NODE_H = 68;
const PILL_W = 120;
const PILL_H = 30;
const GAP_X = 56;
const GAP_Y = 20;
const HEAD = 28;
const PAD = 12;
const CAPTION = 18;

export interface Box {
  /** The node path (NodeStats key), or `in:NAME` / `out:NAME` for the graph's ports. */
  path: string;
  label: string;
  kind: "node" | "group" | "input" | "output";
  /** The graph node's kind: call, map, loop, branch. */
  nodeKind: string;
  component: string | null;
  location: string | null;
  x: number;
  y: number;
  w: number;
  h: number;
  /** Paths of the leaf nodes inside a group (all depths). */
  members: string[];
  /** Captions of a group's sections ("until", "then", "else") with their y offsets. */
  captions: { text: string; y: number }[];
}

export interface Edge {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  label: string;
}

export interface Layout {
  width: number;
  height: number;
  /** Groups before their members, so members draw on top. */
  boxes: Box[];
  edges: Edge[];
}

interface Item {
  key: string;
  box: Box;
  inner: Layout | null;
  sources: Map<string, string[]>; // source key -> ports
}

function sourceNode(source: Source): string | null | undefined {
  return "node" in source ? source.node : undefined;
}

function sections(node: GraphNode): { caption: string | null; graph: PipelineGraph; prefix: string }[] {
  const out: { caption: string | null; graph: PipelineGraph; prefix: string }[] = [];
  if (node.kind === "branch") {
    if (node.body) out.push({ caption: "then", graph: node.body, prefix: "then/" });
    if (node.orelse) out.push({ caption: "else", graph: node.orelse, prefix: "else/" });
  } else {
    if (node.body) out.push({ caption: node.orelse ? "body" : null, graph: node.body, prefix: "" });
    if (node.orelse) out.push({ caption: "until", graph: node.orelse, prefix: "until/" });
  }
  return out;
}

function groupLabel(node: GraphNode): string {
  return node.id.startsWith(node.kind) ? node.id : `${node.kind} ${node.id}`;
}

/** Lay out `graph`; node paths start with `prefix`; `ports` draws the graph's inputs/outputs. */
export function layout(graph: PipelineGraph, prefix = "", ports = true): Layout {
  const items = new Map<string, Item>();
  const order: string[] = [];
  const add = (item: Item) => {
    items.set(item.key, item);
    order.push(item.key);
  };
  const blank = (path: string, label: string, kind: Box["kind"], w: number, h: number): Box => ({
    path, label, kind, nodeKind: kind, component: null, location: null, x: 0, y: 0, w, h, members: [], captions: [],
  });

  if (ports) {
    for (const port of graph.inputs) {
      add({ key: `in:${port.name}`, box: blank(`in:${port.name}`, port.name, "input", PILL_W, PILL_H), inner: null, sources: new Map() });
    }
  }
  for (const node of graph.nodes) {
    const path = prefix + node.id;
    const sources = new Map<string, string[]>();
    for (const [port, source] of Object.entries(node.inputs)) {
      const from = sourceNode(source);
      let key: string | null = null;
      if (typeof from === "string") key = from;
      else if (from === null && ports && "port" in source) key = `in:${source.port}`;
      if (key === null) continue;
      sources.set(key, [...(sources.get(key) ?? []), port]);
    }
    const parts = sections(node);
    if (parts.length === 0) {
      const box = blank(path, node.id, "node", NODE_W, NODE_H);
      box.nodeKind = node.kind;
      box.component = node.component?.name ?? null;
      box.location = node.location ?? null;
      box.members = [path];
      add({ key: node.id, box, inner: null, sources });
      continue;
    }
    // A group: its sections stacked vertically inside a header and padding.
    const inner: Layout = { width: 0, height: HEAD, boxes: [], edges: [] };
    const captions: { text: string; y: number }[] = [];
    const members: string[] = [];
    for (const part of parts) {
      const sub = layout(part.graph, `${path}/${part.prefix}`, false);
      if (part.caption) {
        captions.push({ text: part.caption, y: inner.height + 4 });
        inner.height += CAPTION;
      }
      const dx = PAD;
      const dy = inner.height;
      for (const b of sub.boxes) {
        inner.boxes.push({ ...b, x: b.x + dx, y: b.y + dy });
        if (b.kind === "node") members.push(b.path);
      }
      for (const e of sub.edges) inner.edges.push({ ...e, x1: e.x1 + dx, y1: e.y1 + dy, x2: e.x2 + dx, y2: e.y2 + dy });
      inner.width = Math.max(inner.width, sub.width + 2 * PAD);
      inner.height += sub.height + PAD;
    }
    inner.width = Math.max(inner.width, NODE_W);
    const box = blank(path, groupLabel(node), "group", inner.width, inner.height);
    box.nodeKind = node.kind;
    box.location = node.location ?? null;
    box.members = members;
    box.captions = captions;
    add({ key: node.id, box, inner, sources });
  }
  if (ports) {
    for (const [name, source] of Object.entries(graph.outputs)) {
      const from = sourceNode(source);
      const sources = new Map<string, string[]>();
      if (typeof from === "string") sources.set(from, [name]);
      else if (from === null && "port" in source) sources.set(`in:${source.port}`, [name]);
      add({ key: `out:${name}`, box: blank(`out:${name}`, name, "output", PILL_W, PILL_H), inner: null, sources });
    }
  }

  // Layers: the longest path from a source-less item.
  const layerOf = new Map<string, number>();
  const visiting = new Set<string>();
  const layer = (key: string): number => {
    const known = layerOf.get(key);
    if (known !== undefined) return known;
    if (visiting.has(key)) return 0; // a cycle cannot be drawn in layers; break it here
    visiting.add(key);
    let depth = 0;
    for (const src of items.get(key)?.sources.keys() ?? []) {
      if (items.has(src)) depth = Math.max(depth, layer(src) + 1);
    }
    visiting.delete(key);
    layerOf.set(key, depth);
    return depth;
  };
  order.forEach(layer);
  let last = 0;
  for (const [key, depth] of layerOf) if (!key.startsWith("out:")) last = Math.max(last, depth);
  for (const key of order) if (key.startsWith("out:")) layerOf.set(key, Math.max(layerOf.get(key) ?? 0, last + 1));

  const columns: string[][] = [];
  for (const key of order) {
    const depth = layerOf.get(key) ?? 0;
    while (columns.length <= depth) columns.push([]);
    columns[depth].push(key);
  }
  const nonEmpty = columns.filter((c) => c.length > 0);

  // Barycentre sweeps: order each column by the mean rank of its sources.
  const rank = new Map<string, number>();
  const setRanks = () => nonEmpty.forEach((col) => col.forEach((key, i) => rank.set(key, i)));
  setRanks();
  for (let sweep = 0; sweep < 2; sweep++) {
    for (const col of nonEmpty.slice(1)) {
      const centre = (key: string): number => {
        const srcs = [...(items.get(key)?.sources.keys() ?? [])].filter((s) => rank.has(s));
        if (srcs.length === 0) return rank.get(key) ?? 0;
        return srcs.reduce((sum, s) => sum + (rank.get(s) ?? 0), 0) / srcs.length;
      };
      const centres = new Map(col.map((key) => [key, centre(key)] as const));
      col.sort((a, b) => (centres.get(a)! - centres.get(b)!) || (order.indexOf(a) - order.indexOf(b)));
      col.forEach((key, i) => rank.set(key, i));
    }
  }

  // Positions: columns left to right, each centred vertically.
  const heights = nonEmpty.map((col) => col.reduce((sum, key) => sum + items.get(key)!.box.h, 0) + GAP_Y * (col.length - 1));
  const height = Math.max(0, ...heights);
  let x = 0;
  nonEmpty.forEach((col, c) => {
    const width = Math.max(...col.map((key) => items.get(key)!.box.w));
    let y = (height - heights[c]) / 2;
    for (const key of col) {
      const box = items.get(key)!.box;
      box.x = x + (width - box.w) / 2;
      box.y = y;
      y += box.h + GAP_Y;
    }
    x += width + GAP_X;
  });
  const width = Math.max(0, x - GAP_X);

  const boxes: Box[] = [];
  const edges: Edge[] = [];
  for (const key of order) {
    const item = items.get(key)!;
    const box = item.box;
    boxes.push(box);
    if (item.inner) {
      for (const b of item.inner.boxes) boxes.push({ ...b, x: b.x + box.x, y: b.y + box.y });
      for (const e of item.inner.edges) edges.push({ ...e, x1: e.x1 + box.x, y1: e.y1 + box.y, x2: e.x2 + box.x, y2: e.y2 + box.y });
    }
    for (const [src, ports] of item.sources) {
      const from = items.get(src)?.box;
      if (!from) continue;
      edges.push({
        x1: from.x + from.w, y1: from.y + Math.min(from.h / 2, from.kind === "group" ? HEAD / 2 + 4 : from.h / 2),
        x2: box.x, y2: box.y + Math.min(box.h / 2, box.kind === "group" ? HEAD / 2 + 4 : box.h / 2),
        label: ports.join(", "),
      });
    }
  }
  return { width, height, boxes, edges };
}
