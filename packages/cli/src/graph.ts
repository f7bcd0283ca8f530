/**
 * `improv graph`: a pipeline's actors and connections as Mermaid, Graphviz dot, or an SVG laid out
 * with dagre (the layout library; the SVG elements are written here). `graphOf` and `formatSvg` are
 * pure, for the dashboard to reuse.
 * @module
 */
import { writeFile } from 'node:fs/promises';
import dagre from '@dagrejs/dagre';
import {
  closest,
  DEFAULT_LINK_CAPACITY,
  detectRuntime,
  formatDiagnostics,
  loadConfig,
  type PipelineConfig,
} from '@improv/core';

/** An actor as the graph draws it. */
export interface GraphNode {
  name: string;
  className: string;
  /** Where it runs when not in a worker of Nexus's process: `bun process`, `python`, `on rig`. */
  placement?: string;
}

/** One source → sink pair of a connection. */
export interface GraphEdge {
  from: string;
  to: string;
  connection: string;
  /** `q_out → q_in`, and the connection's capacity, policy and transport when not the default. */
  label: string;
}

export interface PipelineGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** The formats `improv graph` writes. */
export const graphFormats = ['mermaid', 'dot', 'svg'] as const;
export type GraphFormat = (typeof graphFormats)[number];

/** The graph of a validated pipeline. */
export function graphOf(config: PipelineConfig): PipelineGraph {
  const nodes = config.actors.map((actor): GraphNode => {
    const node: GraphNode = { name: actor.name, className: actor.className };
    const where = actor.process;
    if (where !== undefined) {
      const runtime = where.runtime === 'python' ? 'python' : `${where.runtime ?? 'own'} process`;
      node.placement = where.host === undefined ? runtime : `${runtime} on ${where.host}`;
    }
    return node;
  });
  const edges: GraphEdge[] = [];
  for (const connection of config.connections) {
    const extras: string[] = [];
    if (connection.capacity !== DEFAULT_LINK_CAPACITY) extras.push(`capacity ${connection.capacity}`);
    if (connection.policy !== 'block') extras.push(connection.policy);
    if (connection.transport !== undefined) extras.push(connection.transport);
    for (const source of connection.sources) {
      for (const sink of connection.sinks) {
        const links = `${source.link} → ${sink.link}`;
        edges.push({
          from: source.actor,
          to: sink.actor,
          connection: connection.name,
          label: extras.length > 0 ? `${links} (${extras.join(', ')})` : links,
        });
      }
    }
  }
  return { nodes, edges };
}

/** A node's lines of text: name, class (when it differs), placement. */
function nodeLines(node: GraphNode): string[] {
  const lines = [node.name];
  if (node.className !== node.name) lines.push(node.className);
  if (node.placement !== undefined) lines.push(node.placement);
  return lines;
}

/** Mermaid flowchart, left to right; ids are n0, n1… so any actor name is safe. */
export function formatMermaid(graph: PipelineGraph): string {
  const id = new Map(graph.nodes.map((node, index) => [node.name, `n${index}`]));
  const text = (value: string) => value.replace(/"/g, '#quot;');
  const lines = ['flowchart LR'];
  for (const node of graph.nodes) lines.push(`  ${id.get(node.name)}["${nodeLines(node).map(text).join('<br/>')}"]`);
  for (const edge of graph.edges) {
    lines.push(`  ${id.get(edge.from)} -- "${text(edge.label)}" --> ${id.get(edge.to)}`);
  }
  return lines.join('\n');
}

/** Graphviz dot, left to right. */
export function formatDot(graph: PipelineGraph): string {
  const quote = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lines = [
    'digraph pipeline {',
    '  rankdir=LR;',
    '  node [shape=box, style=rounded, fontname="Helvetica"];',
    '  edge [fontname="Helvetica", fontsize=10];',
  ];
  for (const node of graph.nodes) {
    lines.push(`  ${quote(node.name)} [label=${quote(nodeLines(node).join('\n')).replace(/\n/g, '\\n')}];`);
  }
  for (const edge of graph.edges)
    lines.push(`  ${quote(edge.from)} -> ${quote(edge.to)} [label=${quote(edge.label)}];`);
  lines.push('}');
  return lines.join('\n');
}

const FONT = 13;
const SMALL = 11;
/** Rough text width for a sans-serif font: enough room, never measured (no browser here). */
const textWidth = (text: string, size: number) => Math.ceil(text.length * size * 0.62);
const escapeXml = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A laid-out SVG: rounded boxes for actors, curved-free polyline edges with arrowheads and labels. */
export function formatSvg(graph: PipelineGraph): string {
  const layout = new dagre.graphlib.Graph({ multigraph: true });
  layout.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: 90, edgesep: 20, marginx: 20, marginy: 20 });
  layout.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    const lines = nodeLines(node);
    const width = Math.max(...lines.map((line, index) => textWidth(line, index === 0 ? FONT : SMALL))) + 28;
    layout.setNode(node.name, { width, height: 18 + lines.length * 16 });
  }
  graph.edges.forEach((edge, index) => {
    layout.setEdge(
      edge.from,
      edge.to,
      { width: textWidth(edge.label, SMALL) + 8, height: 16, labelpos: 'c' },
      `e${index}`,
    );
  });
  dagre.layout(layout);
  const size = layout.graph();
  const width = Math.ceil(size.width ?? 0);
  const height = Math.ceil(size.height ?? 0);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="Helvetica, Arial, sans-serif">`,
    '  <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
  ];
  graph.edges.forEach((edge, index) => {
    const laid = layout.edge({ v: edge.from, w: edge.to, name: `e${index}` }) as {
      points: { x: number; y: number }[];
      x?: number;
      y?: number;
    };
    const d = laid.points
      .map((point, at) => `${at === 0 ? 'M' : 'L'}${point.x.toFixed(1)},${point.y.toFixed(1)}`)
      .join(' ');
    out.push(
      `  <path class="edge" data-connection="${escapeXml(edge.connection)}" d="${d}" fill="none" stroke="#555" stroke-width="1.4" marker-end="url(#arrow)"/>`,
    );
    if (laid.x !== undefined && laid.y !== undefined) {
      out.push(
        `  <text class="edge-label" x="${laid.x.toFixed(1)}" y="${(laid.y + 4).toFixed(1)}" font-size="${SMALL}" text-anchor="middle" fill="#333">${escapeXml(edge.label)}</text>`,
      );
    }
  });
  for (const node of graph.nodes) {
    const laid = layout.node(node.name);
    const x = laid.x - laid.width / 2;
    const y = laid.y - laid.height / 2;
    out.push(
      `  <g class="actor" data-actor="${escapeXml(node.name)}"><rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${laid.width}" height="${laid.height}" rx="8" fill="#eef4fb" stroke="#3b6ea5" stroke-width="1.4"/>`,
    );
    nodeLines(node).forEach((line, index) => {
      const size = index === 0 ? FONT : SMALL;
      const weight = index === 0 ? ' font-weight="bold"' : '';
      out.push(
        `    <text x="${laid.x.toFixed(1)}" y="${(y + 22 + index * 16).toFixed(1)}" font-size="${size}"${weight} text-anchor="middle" fill="#1d3557">${escapeXml(line)}</text>`,
      );
    });
    out.push('  </g>');
  }
  out.push('</svg>');
  return out.join('\n');
}

/** `improv graph <pipeline> [--format] [--out]`; resolves to the exit code. */
export async function graphCommand(
  pipeline: string,
  options: { format?: string; out?: string },
  output: { write(line: string): void },
): Promise<number> {
  const format = (options.format ?? 'mermaid').toLowerCase();
  if (!(graphFormats as readonly string[]).includes(format)) {
    const near = closest(format, graphFormats);
    output.write(
      `improv graph: unknown format "${options.format}"; ${near ? `did you mean "${near}"? ` : ''}use ${graphFormats.join(', ')}`,
    );
    return 2;
  }
  const runtime = await detectRuntime();
  const result = await loadConfig(pipeline, { adapter: runtime, checkModules: false });
  if (result.config === undefined) {
    output.write(formatDiagnostics(result.diagnostics, { cwd: runtime.cwd() }));
    output.write(`${pipeline}: no graph; fix the errors above (improv validate ${pipeline} checks again)`);
    return 2;
  }
  const graph = graphOf(result.config);
  const text = format === 'dot' ? formatDot(graph) : format === 'svg' ? formatSvg(graph) : formatMermaid(graph);
  if (options.out === undefined) {
    output.write(text);
    return 0;
  }
  try {
    await writeFile(options.out, `${text}\n`);
  } catch (error) {
    output.write(
      `improv graph: cannot write ${options.out}: ${(error as Error).message}; give a file you can write to`,
    );
    return 2;
  }
  output.write(`wrote ${options.out} (${format}: ${graph.nodes.length} actors, ${graph.edges.length} edges)`);
  return 0;
}
