/**
 * `improv graph`: a pipeline's actors and connections as Mermaid, Graphviz dot, or an SVG laid out
 * with dagre (the layout library places the boxes and routes the edges; the SVG elements are written
 * here).
 *
 * `graphOf`, `layoutGraph` and the `format…` functions are pure (no files, no runtime), so the
 * dashboard can draw a pipeline with them too; only `graphCommand` reads and writes files.
 *
 * @example
 * ```ts
 * const { config } = await loadConfig('pipeline.yaml', { adapter, checkModules: false });
 * const graph = graphOf(config!);
 * formatMermaid(graph); // flowchart LR\n  n0["Generator<br/>Generator"] …
 * formatSvg(graph, { idPrefix: 'live' }); // <svg xmlns=… viewBox="0 0 …">…</svg>
 * ```
 * @module
 */
import dagre from '@dagrejs/dagre';
import {
  DEFAULT_LINK_CAPACITY,
  detectRuntime,
  didYouMean,
  formatDiagnostics,
  type LinkPolicy,
  loadConfig,
  type PipelineConfig,
  permissionFix,
  type TransportName,
} from '@improv/core';
import { exitCodes } from './exit-codes.ts';

/** An actor as the graph draws it. */
export interface GraphNode {
  /** The actor's name (its key under `actors:`). */
  name: string;
  /** `class:` — the export that holds the actor class. */
  className: string;
  /** `package:` as written. */
  package: string;
  /** A Python actor (a `.py` package, or improv's dotted form naming one), or a TypeScript/JavaScript one. */
  language: 'typescript' | 'python';
  /**
   * `worker`: a worker of Nexus's process (the default); `process`: an OS process of its own
   * (`method: process`, a `runtime:` or `host:`, or any Python actor).
   */
  method: 'worker' | 'process';
  /** The runtime of its process, when it names one (`python` for a Python actor). */
  runtime?: 'node' | 'bun' | 'deno' | 'python';
  /** The entry of `hosts:` whose agent runs it, when not this machine. */
  host?: string;
}

/** One source → sink pair of a connection. */
export interface GraphEdge {
  /** Source and sink actors. */
  from: string;
  to: string;
  /** Their links: `q_out`, `q_in`. */
  fromLink: string;
  toLink: string;
  /** The connection's name (its YAML key). */
  connection: string;
  /** The connection's capacity, when not the default (1024). */
  capacity?: number;
  /** The connection's policy, when not the default (`block`). */
  policy?: LinkPolicy;
  /** The connection's `transport:`, when it names one. */
  transport?: TransportName;
  /** `q_out → q_in`, then what is not the default: `q_out → q_in (capacity 8, drop-oldest, zmq)`. */
  label: string;
}

/** A pipeline as nodes and edges: actors in file order; edges by connection, then source, then sink. */
export interface PipelineGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** The formats `improv graph` writes. */
export const graphFormats = ['mermaid', 'dot', 'svg'] as const;
export type GraphFormat = (typeof graphFormats)[number];

/** The graph of a validated pipeline. */
export function graphOf(config: Pick<PipelineConfig, 'actors' | 'connections'>): PipelineGraph {
  const nodes = config.actors.map((actor): GraphNode => {
    const where = actor.process;
    const node: GraphNode = {
      name: actor.name,
      className: actor.className,
      package: actor.package,
      language: where?.runtime === 'python' ? 'python' : 'typescript',
      method: where === undefined ? 'worker' : 'process',
    };
    if (where?.runtime !== undefined) node.runtime = where.runtime;
    if (where?.host !== undefined) node.host = where.host;
    return node;
  });
  const edges: GraphEdge[] = [];
  for (const connection of config.connections) {
    const settings: Pick<GraphEdge, 'capacity' | 'policy' | 'transport'> = {};
    if (connection.capacity !== DEFAULT_LINK_CAPACITY) settings.capacity = connection.capacity;
    if (connection.policy !== 'block') settings.policy = connection.policy;
    if (connection.transport !== undefined) settings.transport = connection.transport;
    const extras = [
      settings.capacity === undefined ? undefined : `capacity ${settings.capacity}`,
      settings.policy,
      settings.transport,
    ].filter((extra) => extra !== undefined);
    for (const source of connection.sources) {
      for (const sink of connection.sinks) {
        const links = `${source.link} → ${sink.link}`;
        edges.push({
          from: source.actor,
          to: sink.actor,
          fromLink: source.link,
          toLink: sink.link,
          connection: connection.name,
          ...settings,
          label: extras.length > 0 ? `${links} (${extras.join(', ')})` : links,
        });
      }
    }
  }
  // An endpoint of an actor that is not listed (a config assembled by hand) still gets its box.
  const known = new Set(nodes.map((node) => node.name));
  for (const edge of edges) {
    for (const name of [edge.from, edge.to]) {
      if (known.has(name)) continue;
      known.add(name);
      nodes.push({ name, className: '?', package: '', language: 'typescript', method: 'worker' });
    }
  }
  return { nodes, edges };
}

/** Where a node runs, when not in a worker: `bun process`, `own process on rig`, `python process`. */
export function placementOf(node: GraphNode): string | undefined {
  if (node.method === 'worker') return undefined;
  const process = `${node.runtime ?? 'own'} process`;
  return node.host === undefined ? process : `${process} on ${node.host}`;
}

/** A node's lines of text: name, class, and where it runs when not in a worker. */
function nodeLines(node: GraphNode): string[] {
  const placement = placementOf(node);
  return placement === undefined ? [node.name, node.className] : [node.name, node.className, placement];
}

const colours = {
  node: { fill: '#eef4fb', stroke: '#3b6ea5', text: '#1d3557' },
  python: { fill: '#fff6d5', stroke: '#b8860b', text: '#5c4300' },
  edge: '#555555',
  label: '#333333',
};

/** Mermaid flowchart, left to right; ids are n0, n1… so any actor name is safe. */
export function formatMermaid(graph: PipelineGraph): string {
  const id = new Map(graph.nodes.map((node, index) => [node.name, `n${index}`]));
  // Mermaid's entity codes: `#quot;` for ", and the characters its HTML labels would read.
  const text = (value: string) =>
    value
      .replace(/#/g, '#35;')
      .replace(/"/g, '#quot;')
      .replace(/&/g, '#amp;')
      .replace(/</g, '#lt;')
      .replace(/>/g, '#gt;');
  const lines = ['flowchart LR'];
  for (const node of graph.nodes) lines.push(`  ${id.get(node.name)}["${nodeLines(node).map(text).join('<br/>')}"]`);
  for (const edge of graph.edges) {
    lines.push(`  ${id.get(edge.from)} -- "${text(edge.label)}" --> ${id.get(edge.to)}`);
  }
  const python = graph.nodes.filter((node) => node.language === 'python').map((node) => id.get(node.name));
  if (python.length > 0) {
    const { fill, stroke, text: colour } = colours.python;
    lines.push(`  classDef python fill:${fill},stroke:${stroke},color:${colour}`);
    lines.push(`  class ${python.join(',')} python`);
  }
  return lines.join('\n');
}

/** Graphviz dot, left to right; every id and label quoted. */
export function formatDot(graph: PipelineGraph): string {
  // In a quoted dot string only \" is an escape; a label also reads \\ and \n.
  const quote = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const { node, python, edge } = colours;
  const lines = [
    'digraph pipeline {',
    '  rankdir=LR;',
    `  node [shape=box, style="rounded,filled", fillcolor="${node.fill}", color="${node.stroke}", fontcolor="${node.text}", fontname="Helvetica"];`,
    `  edge [color="${edge}", fontcolor="${colours.label}", fontname="Helvetica", fontsize=10];`,
  ];
  for (const each of graph.nodes) {
    const label = quote(nodeLines(each).join('\n')).replace(/\n/g, '\\n');
    const style =
      each.language === 'python'
        ? `, fillcolor="${python.fill}", color="${python.stroke}", fontcolor="${python.text}"`
        : '';
    lines.push(`  ${quote(each.name)} [label=${label}${style}];`);
  }
  for (const each of graph.edges) {
    lines.push(`  ${quote(each.from)} -> ${quote(each.to)} [label=${quote(each.label)}];`);
  }
  lines.push('}');
  return lines.join('\n');
}

/** A point of the layout, in SVG user units (y down). */
export interface GraphPoint {
  x: number;
  y: number;
}

/** A laid-out actor: its box (top-left corner and size) and its lines of text. */
export interface NodeBox {
  node: GraphNode;
  x: number;
  y: number;
  width: number;
  height: number;
  lines: string[];
}

/** A laid-out edge: its route from the source's box to the sink's, and its label's box (centre and size). */
export interface EdgeRoute {
  edge: GraphEdge;
  /**
   * The route: dagre's points, from the edge of the source's box to the edge of the sink's. For an
   * actor's link to itself, the four points of a cubic Bézier looping over the top of its box.
   */
  points: GraphPoint[];
  /** SVG path data of the route, drawn smooth (what {@link formatSvg} draws). */
  d: string;
  label: GraphPoint & { width: number; height: number };
}

/** Where everything goes: every box, route and label lies within `width` × `height` from the origin. */
export interface GraphLayout {
  width: number;
  height: number;
  nodes: NodeBox[];
  edges: EdgeRoute[];
}

const FONT = 13;
const SMALL = 11;
const LINE = 16;
const PAD_X = 14;
const PAD_Y = 9;
const MARGIN = 20;
/** A link of an actor to itself: a loop over its box, the nth one `LOOP + n × LOOP_STEP` high. */
const LOOP = 28;
const LOOP_STEP = 32;

/**
 * The width of sans-serif text, from rough per-character widths (in em, near Helvetica's and Arial's,
 * plus a tenth for wider fallback fonts): never measured, since there is no browser here.
 */
function textWidth(text: string, size: number, bold = false): number {
  let ems = 0;
  for (const char of text) {
    if (/[ijl|.,:;'!]/.test(char)) ems += 0.28;
    else if (/[ ftr()[\]-]/.test(char)) ems += 0.34;
    else if (/[mwMW]/.test(char)) ems += 0.86;
    else if (/[A-Z]/.test(char)) ems += 0.7;
    else if (/[\x20-\x7e]/.test(char)) ems += 0.56;
    else ems += 1; // → and anything else outside ASCII
  }
  return Math.ceil(ems * size * (bold ? 1.08 : 1) * 1.1);
}

/** Where the line from `outside` to the centre of `box` crosses the box's border. */
function clip(box: Omit<NodeBox, 'node' | 'lines'>, outside: GraphPoint): GraphPoint {
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const dx = outside.x - cx;
  const dy = outside.y - cy;
  if (dx === 0 && dy === 0) return { x: cx, y: box.y };
  const scale = Math.min(
    dx === 0 ? Infinity : box.width / 2 / Math.abs(dx),
    dy === 0 ? Infinity : box.height / 2 / Math.abs(dy),
  );
  return { x: cx + dx * Math.min(scale, 1), y: cy + dy * Math.min(scale, 1) };
}

const n = (value: number) => String(Math.round(value * 10) / 10);

/**
 * A smooth route through dagre's points: straight to the middle of the first leg, then a quadratic
 * curve around each bend (the bend its control point), and straight into the last point, so the
 * arrowhead points along the last leg.
 */
function routePath(points: GraphPoint[]): string {
  if (points.length === 0) return '';
  const [first] = points;
  const parts = [`M${n(first!.x)},${n(first!.y)}`];
  if (points.length === 1) return parts[0]!;
  const mid = (a: GraphPoint, b: GraphPoint) => ({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 });
  let at = mid(points[0]!, points[1]!);
  parts.push(`L${n(at.x)},${n(at.y)}`);
  for (let index = 1; index < points.length - 1; index++) {
    const bend = points[index]!;
    at = mid(bend, points[index + 1]!);
    parts.push(`Q${n(bend.x)},${n(bend.y)} ${n(at.x)},${n(at.y)}`);
  }
  const last = points[points.length - 1]!;
  parts.push(`L${n(last.x)},${n(last.y)}`);
  return parts.join(' ');
}

/**
 * The graph laid out left to right by dagre: box positions and edge routes, for {@link formatSvg} or
 * a drawing of one's own. An actor's links to itself are not given to dagre (its self-loops come out
 * astray): room for them is kept over the actor's box, and they are drawn there.
 */
export function layoutGraph(graph: PipelineGraph): GraphLayout {
  const layout = new dagre.graphlib.Graph({ multigraph: true });
  layout.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 70, edgesep: 16, marginx: MARGIN, marginy: MARGIN });
  layout.setDefaultEdgeLabel(() => ({}));
  const loops = new Map<string, number[]>();
  graph.edges.forEach((edge, index) => {
    if (edge.from === edge.to) loops.set(edge.from, [...(loops.get(edge.from) ?? []), index]);
  });
  /** The height over a box its loops take, their labels included. */
  const loopRoom = (name: string) => {
    const count = loops.get(name)?.length ?? 0;
    return count === 0 ? 0 : 0.75 * (LOOP + (count - 1) * LOOP_STEP) + LINE / 2 + 8;
  };
  const sizes = new Map<string, { width: number; height: number; lines: string[] }>();
  for (const node of graph.nodes) {
    const lines = nodeLines(node);
    const text = Math.max(...lines.map((line, index) => textWidth(line, index === 0 ? FONT : SMALL, index === 0)));
    const size = { width: text + 2 * PAD_X, height: 2 * PAD_Y + lines.length * LINE, lines };
    sizes.set(node.name, size);
    const labels = (loops.get(node.name) ?? []).map((index) => textWidth(graph.edges[index]!.label, SMALL) + 8);
    // The room for loops is kept above and below, so that the box stays at the centre dagre aims at.
    layout.setNode(node.name, {
      width: Math.max(size.width, ...labels),
      height: size.height + 2 * loopRoom(node.name),
    });
  }
  graph.edges.forEach((edge, index) => {
    if (edge.from === edge.to) return;
    layout.setEdge(
      edge.from,
      edge.to,
      { width: textWidth(edge.label, SMALL) + 8, height: LINE, labelpos: 'c' },
      `e${index}`,
    );
  });
  dagre.layout(layout);

  const boxes = new Map<string, NodeBox>();
  const nodes = graph.nodes.map((node): NodeBox => {
    const laid = layout.node(node.name);
    const { width, height, lines } = sizes.get(node.name)!;
    const box = { node, x: (laid.x ?? 0) - width / 2, y: (laid.y ?? 0) - height / 2, width, height, lines };
    boxes.set(node.name, box);
    return box;
  });
  const edges = graph.edges.map((edge, index): EdgeRoute => {
    const labelWidth = textWidth(edge.label, SMALL) + 8;
    if (edge.from === edge.to) {
      const box = boxes.get(edge.from)!;
      const nth = loops.get(edge.from)!.indexOf(index);
      const centre = box.x + box.width / 2;
      const spread = Math.min(box.width / 2 - 6, 12 + nth * 6);
      const high = LOOP + nth * LOOP_STEP;
      const points = [
        { x: centre - spread, y: box.y },
        { x: centre - spread - 8, y: box.y - high },
        { x: centre + spread + 8, y: box.y - high },
        { x: centre + spread, y: box.y },
      ];
      const [start, one, two, end] = points.map((point) => `${n(point.x)},${n(point.y)}`);
      return {
        edge,
        points,
        d: `M${start} C${one} ${two} ${end}`,
        // On the loop's peak, like other labels on their edge's middle.
        label: { x: centre, y: box.y - 0.75 * high, width: labelWidth, height: LINE },
      };
    }
    const laid = layout.edge({ v: edge.from, w: edge.to, name: `e${index}` });
    const points = (laid.points ?? []).map(({ x, y }: GraphPoint) => ({ x, y }));
    // dagre ends routes at the room it was given; an actor with loops has more room than box.
    if (points.length >= 2) {
      points[0] = clip(boxes.get(edge.from)!, points[1]!);
      points[points.length - 1] = clip(boxes.get(edge.to)!, points[points.length - 2]!);
    }
    const middle = points[Math.floor(points.length / 2)] ?? { x: 0, y: 0 };
    return {
      edge,
      points,
      d: routePath(points),
      label: { x: laid.x ?? middle.x, y: laid.y ?? middle.y, width: labelWidth, height: LINE },
    };
  });
  // dagre's size includes its margins; measure everything anyway, so nothing can fall outside.
  const size = layout.graph();
  let width = size.width ?? 0;
  let height = size.height ?? 0;
  const reach = (x: number, y: number) => {
    width = Math.max(width, x + MARGIN);
    height = Math.max(height, y + MARGIN);
  };
  for (const box of nodes) reach(box.x + box.width, box.y + box.height);
  for (const route of edges) {
    for (const point of route.points) reach(point.x, point.y);
    reach(route.label.x + route.label.width / 2, route.label.y + route.label.height / 2);
  }
  return {
    width: Math.ceil(Math.max(width, 2 * MARGIN)),
    height: Math.ceil(Math.max(height, 2 * MARGIN)),
    nodes,
    edges,
  };
}

export interface SvgOptions {
  /**
   * Starts the ids inside the SVG (its arrowhead marker), so several graphs can sit in one HTML page;
   * letters, digits, `-` and `_` (default `improv-graph`).
   */
  idPrefix?: string;
}

const escapeXml = (value: string) =>
  value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');

/**
 * A laid-out SVG, standalone or inline in HTML: a rounded box per actor (name, class, where it runs;
 * Python actors in yellow), a curved path per edge with an arrowhead and its label on a white
 * ground. Each actor is a `<g class="actor" data-actor="…">` and each edge a `<g class="edge"
 * data-from="…" data-to="…" data-connection="…">`, each with a `<title>` (the browser's tooltip).
 */
export function formatSvg(graph: PipelineGraph, options: SvgOptions = {}): string {
  const layout = layoutGraph(graph);
  const prefix = (options.idPrefix ?? 'improv-graph').replace(/[^\w-]/g, '_');
  const arrow = `${prefix}-arrow`;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${layout.width} ${layout.height}" width="${layout.width}" height="${layout.height}" font-family="Helvetica, Arial, sans-serif" role="img">`,
    `  <defs><marker id="${arrow}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${colours.edge}"/></marker></defs>`,
  ];
  // Edges first: boxes and labels are drawn over them.
  for (const route of layout.edges) {
    const { edge } = route;
    out.push(
      `  <g class="edge" data-from="${escapeXml(edge.from)}" data-to="${escapeXml(edge.to)}" data-connection="${escapeXml(edge.connection)}">`,
      `    <title>${escapeXml(`${edge.from}.${edge.fromLink} → ${edge.to}.${edge.toLink} (connection ${edge.connection})`)}</title>`,
      `    <path class="edge" d="${route.d}" fill="none" stroke="${colours.edge}" stroke-width="1.4" marker-end="url(#${arrow})"/>`,
      '  </g>',
    );
  }
  for (const route of layout.edges) {
    const { label } = route;
    out.push(
      `  <g class="edge-label"><rect x="${n(label.x - label.width / 2)}" y="${n(label.y - label.height / 2)}" width="${n(label.width)}" height="${n(label.height)}" rx="3" fill="#ffffff" fill-opacity="0.9"/>`,
      `    <text x="${n(label.x)}" y="${n(label.y + SMALL * 0.35)}" font-size="${SMALL}" text-anchor="middle" fill="${colours.label}">${escapeXml(route.edge.label)}</text></g>`,
    );
  }
  for (const box of layout.nodes) {
    const style = box.node.language === 'python' ? colours.python : colours.node;
    const centre = box.x + box.width / 2;
    out.push(
      `  <g class="actor" data-actor="${escapeXml(box.node.name)}">`,
      `    <title>${escapeXml(`${box.node.name}: ${box.node.className} from ${box.node.package}${box.node.method === 'worker' ? '' : `, ${placementOf(box.node)}`}`)}</title>`,
      `    <rect x="${n(box.x)}" y="${n(box.y)}" width="${n(box.width)}" height="${n(box.height)}" rx="8" fill="${style.fill}" stroke="${style.stroke}" stroke-width="1.4"/>`,
    );
    box.lines.forEach((line, index) => {
      const font = index === 0 ? ` font-size="${FONT}" font-weight="bold"` : ` font-size="${SMALL}"`;
      const italic = index === 1 ? ' font-style="italic"' : '';
      const baseline = box.y + PAD_Y + index * LINE + LINE * 0.75;
      out.push(
        `    <text x="${n(centre)}" y="${n(baseline)}"${font}${italic} text-anchor="middle" fill="${style.text}">${escapeXml(line)}</text>`,
      );
    });
    out.push('  </g>');
  }
  out.push('</svg>');
  return out.join('\n');
}

/** Endings of `--out` for Mermaid text (none is one too). */
const mermaidEndings = ['mmd', 'mermaid', 'md', 'txt'];

/**
 * The format `--out`'s ending implies: `.svg`; `.dot`/`.gv`; Mermaid for `.mmd`, `.mermaid`, `.md`,
 * `.txt` or no ending; `undefined` for any other (`.png`: improv writes no images of its own).
 */
function formatForFile(file: string): GraphFormat | undefined {
  const ending = /\.([^./\\]+)$/.exec(file)?.[1]?.toLowerCase();
  if (ending === undefined || mermaidEndings.includes(ending)) return 'mermaid';
  if (ending === 'svg') return 'svg';
  if (ending === 'dot' || ending === 'gv') return 'dot';
  return undefined;
}

/**
 * `improv graph <pipeline> [--format mermaid|dot|svg] [--out file]`; resolves to the exit code: 0,
 * or 2 for an unknown format, a config with errors (its diagnostics are printed) or an `--out` that
 * cannot be written. Warnings of a valid config are left to `improv validate`, so that the graph
 * printed is all that is printed.
 */
export async function graphCommand(
  pipeline: string,
  options: { format?: string; out?: string },
  output: { write(line: string): void },
): Promise<number> {
  const format =
    options.format === undefined
      ? options.out === undefined
        ? 'mermaid'
        : formatForFile(options.out)
      : options.format.toLowerCase();
  if (format === undefined) {
    output.write(
      `improv graph: cannot tell what to write into ${options.out} from its ending: -o takes .svg (a drawing), .dot or .gv (Graphviz), or .mmd, .md or .txt (Mermaid); for a PNG, improv graph ${pipeline} --format dot | dot -Tpng -o graph.png`,
    );
    return exitCodes.usage;
  }
  if (!(graphFormats as readonly string[]).includes(format)) {
    output.write(
      `improv graph: unknown format "${options.format}"; ${didYouMean(format, graphFormats)}use mermaid, dot or svg`,
    );
    return exitCodes.usage;
  }
  const runtime = await detectRuntime();
  const result = await loadConfig(pipeline, { checkModules: false, adapter: runtime });
  if (result.config === undefined) {
    const errors = result.diagnostics.filter((diagnostic) => diagnostic.severity === 'error').length;
    output.write(formatDiagnostics(result.diagnostics, { cwd: runtime.cwd() }));
    output.write(`${pipeline}: ${errors} error(s); no graph drawn`);
    return exitCodes.usage;
  }
  const graph = graphOf(result.config);
  const text = format === 'dot' ? formatDot(graph) : format === 'svg' ? formatSvg(graph) : formatMermaid(graph);
  if (options.out === undefined) {
    output.write(text);
    return exitCodes.ok;
  }
  const file = runtime.path.resolve(runtime.cwd(), options.out);
  try {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, `${text}\n`);
  } catch (error) {
    output.write(cannotWrite(options.out, file, error, runtime.path.dirname(file)));
    return exitCodes.usage;
  }
  const counts = `${graph.nodes.length} actor(s), ${graph.edges.length} edge(s)`;
  output.write(`wrote ${options.out} (${format}: ${counts})`);
  return exitCodes.ok;
}

/** What went wrong writing `--out`, and what to do. */
function cannotWrite(out: string, file: string, error: unknown, folder: string): string {
  const code = (error as { code?: unknown } | null)?.code;
  const head = `improv graph: cannot write --out ${out}`;
  if (code === 'ENOENT')
    return `${head}: folder ${folder} does not exist\n  fix: create it, or give a file in a folder that exists`;
  if (code === 'EISDIR')
    return `${head}: it is a folder\n  fix: give a file name, e.g. --out ${out.replace(/[\\/]+$/, '')}/graph.svg`;
  if (code === 'ENOTDIR')
    return `${head}: part of the path is a file, not a folder\n  fix: give a file in a folder that exists`;
  const message = error instanceof Error ? error.message : String(error);
  const fix =
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? `this user may not write ${file}: check the permissions of ${folder} (ls -ld), or give a file elsewhere`
      : (permissionFix(error, file) ?? 'give a file you can write to');
  return `${head}: ${message}\n  fix: ${fix}`;
}
