// improv graph: the graph of a pipeline (both connection forms, fan-out, fan-in, placement), as
// Mermaid, Graphviz dot and a dagre-laid SVG, and the command's answers to a bad format, a config
// with errors and an --out it cannot write.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectRuntime, loadConfig } from '@improv/core';
import { describe, expect, it } from 'vitest';
import {
  formatDot,
  formatMermaid,
  formatSvg,
  type GraphEdge,
  graphCommand,
  graphOf,
  layoutGraph,
  type NodeBox,
  type PipelineGraph,
} from '../src/graph.ts';
import { main } from '../src/main.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const minimal = join(root, 'apps/minimal/minimal.yaml');
const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/${path}`, import.meta.url));
const fan = fixture('graph/fan.yaml');
const improvMinimal = fixture('improv-minimal/minimal.yaml');
const dot = '/usr/bin/dot';
const python = '/usr/bin/python3';

async function graph(pipeline: string, options: { format?: string; out?: string } = {}) {
  const lines: string[] = [];
  const code = await graphCommand(pipeline, options, { write: (line) => lines.push(line) });
  return { code, text: lines.join('\n') };
}

async function graphOfFile(path: string): Promise<PipelineGraph> {
  const result = await loadConfig(path, { checkModules: false, adapter: await detectRuntime() });
  expect(result.diagnostics.filter((diagnostic) => diagnostic.severity === 'error')).toEqual([]);
  return graphOf(result.config!);
}

/**
 * Checks that `xml` is well-formed XML (one root, tags nested and closed, attributes quoted, `<` and
 * `&` only as markup or entities) and returns its elements' names in document order.
 */
function xmlElements(xml: string): string[] {
  const token = /<!--[\s\S]*?-->|<(\/?)([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*\s*=\s*"[^"<]*")*)\s*(\/?)>|([^<]+)/y;
  const entities = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[\da-fA-F]+);)/;
  const open: string[] = [];
  const names: string[] = [];
  let roots = 0;
  while (token.lastIndex < xml.length) {
    const at = token.lastIndex;
    const match = token.exec(xml);
    if (match === null) throw new Error(`not XML at ${at}: ${xml.slice(at, at + 60)}`);
    const [whole, closing, name, attributes, selfClosing, text] = match;
    if (whole.startsWith('<!--')) continue;
    if (text !== undefined) {
      if (entities.test(text)) throw new Error(`bare & in text at ${at}`);
      if (open.length === 0 && text.trim() !== '') throw new Error(`text outside the root at ${at}`);
      continue;
    }
    if (entities.test(attributes ?? '')) throw new Error(`bare & in an attribute at ${at}`);
    const seen = [...(attributes ?? '').matchAll(/([\w:.-]+)\s*=/g)].map((attribute) => attribute[1]);
    if (new Set(seen).size !== seen.length) throw new Error(`an attribute twice at ${at}`);
    if (closing) {
      if (open.pop() !== name) throw new Error(`</${name}> closes nothing open at ${at}`);
      continue;
    }
    if (open.length === 0) roots++;
    names.push(name!);
    if (!selfClosing) open.push(name!);
  }
  if (open.length > 0) throw new Error(`unclosed <${open.join('>, <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return names;
}

const fanMermaid = [
  'flowchart LR',
  '  n0["Camera<br/>Generator"]',
  '  n1["Left<br/>Processor<br/>own process"]',
  '  n2["Right<br/>Processor<br/>bun process on rig"]',
  '  n3["Double<br/>Doubler<br/>python process"]',
  '  n4["Sink#quot;A#quot;#lt;#amp;#gt;<br/>Processor"]',
  '  n5["Log<br/>Processor"]',
  '  n0 -- "q_out → q_in (capacity 8, drop-oldest)" --> n1',
  '  n0 -- "q_out → q_in (capacity 8, drop-oldest)" --> n2',
  '  n0 -- "q_out → q_in (capacity 8, drop-oldest)" --> n3',
  '  n1 -- "q_out → q_in (zmq)" --> n4',
  '  n2 -- "q_out → q_in (zmq)" --> n4',
  '  n3 -- "q_out → q_extra" --> n4',
  '  n0 -- "q_meta → q_in" --> n5',
  '  classDef python fill:#fff6d5,stroke:#b8860b,color:#5c4300',
  '  class n3 python',
].join('\n');

describe('graphOf', () => {
  it('has every actor with its class and placement, and an edge per source → sink pair', async () => {
    const fanGraph = await graphOfFile(fan);
    expect(fanGraph.nodes.map(({ package: _, ...node }) => node)).toEqual([
      { name: 'Camera', className: 'Generator', language: 'typescript', method: 'worker' },
      { name: 'Left', className: 'Processor', language: 'typescript', method: 'process' },
      { name: 'Right', className: 'Processor', language: 'typescript', method: 'process', runtime: 'bun', host: 'rig' },
      { name: 'Double', className: 'Doubler', language: 'python', method: 'process', runtime: 'python' },
      { name: 'Sink"A"<&>', className: 'Processor', language: 'typescript', method: 'worker' },
      { name: 'Log', className: 'Processor', language: 'typescript', method: 'worker' },
    ]);
    expect(fanGraph.nodes[3]!.package).toBe('../python/actors.py');
    const frames = { capacity: 8, policy: 'drop-oldest', label: 'q_out → q_in (capacity 8, drop-oldest)' } as const;
    const results = { connection: 'results', transport: 'zmq', label: 'q_out → q_in (zmq)' } as const;
    expect(fanGraph.edges).toEqual<GraphEdge[]>([
      // sources/sinks form, one source and three sinks: fan-out
      { from: 'Camera', to: 'Left', fromLink: 'q_out', toLink: 'q_in', connection: 'frames', ...frames },
      { from: 'Camera', to: 'Right', fromLink: 'q_out', toLink: 'q_in', connection: 'frames', ...frames },
      { from: 'Camera', to: 'Double', fromLink: 'q_out', toLink: 'q_in', connection: 'frames', ...frames },
      // two sources and one sink (written as a scalar): fan-in
      { from: 'Left', to: 'Sink"A"<&>', fromLink: 'q_out', toLink: 'q_in', ...results },
      { from: 'Right', to: 'Sink"A"<&>', fromLink: 'q_out', toLink: 'q_in', ...results },
      // improv's short form, with a list of sinks and with one
      {
        from: 'Double',
        to: 'Sink"A"<&>',
        fromLink: 'q_out',
        toLink: 'q_extra',
        connection: 'Double.q_out',
        label: 'q_out → q_extra',
      },
      {
        from: 'Camera',
        to: 'Log',
        fromLink: 'q_meta',
        toLink: 'q_in',
        connection: 'Camera.q_meta',
        label: 'q_meta → q_in',
      },
    ]);
  });

  it("reads improv's own pipelines: dotted packages naming Python files", async () => {
    const improv = await graphOfFile(improvMinimal);
    expect(improv.nodes.map((node) => [node.name, node.language, node.runtime])).toEqual([
      ['Generator', 'python', 'python'],
      ['Processor', 'python', 'python'],
    ]);
    expect(formatMermaid(improv)).toBe(
      [
        'flowchart LR',
        '  n0["Generator<br/>Generator<br/>python process"]',
        '  n1["Processor<br/>Processor<br/>python process"]',
        '  n0 -- "q_out → q_in" --> n1',
        '  classDef python fill:#fff6d5,stroke:#b8860b,color:#5c4300',
        '  class n0,n1 python',
      ].join('\n'),
    );
  });
});

describe('formatMermaid and formatDot', () => {
  it('draws the minimal demo', async () => {
    expect(await graph(minimal)).toEqual({
      code: 0,
      text: 'flowchart LR\n  n0["Generator<br/>Generator"]\n  n1["Processor<br/>Processor"]\n  n0 -- "q_out → q_in" --> n1',
    });
    expect(await graph(minimal, { format: 'dot' })).toEqual({
      code: 0,
      text: [
        'digraph pipeline {',
        '  rankdir=LR;',
        '  node [shape=box, style="rounded,filled", fillcolor="#eef4fb", color="#3b6ea5", fontcolor="#1d3557", fontname="Helvetica"];',
        '  edge [color="#555555", fontcolor="#333333", fontname="Helvetica", fontsize=10];',
        '  "Generator" [label="Generator\\nGenerator"];',
        '  "Processor" [label="Processor\\nProcessor"];',
        '  "Generator" -> "Processor" [label="q_out → q_in"];',
        '}',
      ].join('\n'),
    });
  });

  it('draws fan-out and fan-in with link options, placement and Python actors', async () => {
    expect(await graph(fan, { format: 'mermaid' })).toEqual({ code: 0, text: fanMermaid });
    const { code, text } = await graph(fan, { format: 'DOT' });
    expect(code).toBe(0);
    const lines = text.split('\n');
    expect(lines[0]).toBe('digraph pipeline {');
    expect(lines.at(-1)).toBe('}');
    expect(lines).toContain('  "Right" [label="Right\\nProcessor\\nbun process on rig"];');
    expect(lines).toContain(
      '  "Double" [label="Double\\nDoubler\\npython process", fillcolor="#fff6d5", color="#b8860b", fontcolor="#5c4300"];',
    );
    expect(lines).toContain('  "Sink\\"A\\"<&>" [label="Sink\\"A\\"<&>\\nProcessor"];');
    expect(lines).toContain('  "Camera" -> "Double" [label="q_out → q_in (capacity 8, drop-oldest)"];');
    expect(lines).toContain('  "Right" -> "Sink\\"A\\"<&>" [label="q_out → q_in (zmq)"];');
    expect(lines.filter((line) => line.includes(' -> '))).toHaveLength(7);
  });

  it.skipIf(!existsSync(dot))('writes dot that Graphviz draws', async () => {
    const text = formatDot(await graphOfFile(fan));
    const drawn = spawnSync(dot, ['-Tsvg'], { input: text, encoding: 'utf8' });
    expect(drawn.stderr).toBe('');
    expect(drawn.status).toBe(0);
    expect(drawn.stdout.match(/class="node"/g)).toHaveLength(6);
    expect(drawn.stdout.match(/class="edge"/g)).toHaveLength(7);
    expect(drawn.stdout).toContain('<title>Sink&quot;A&quot;&lt;&amp;&gt;</title>');
    expect(drawn.stdout).toContain('>bun process on rig</text>');
  });

  it('keeps any name and label safe: backslashes, quotes and markup', () => {
    const odd: PipelineGraph = {
      nodes: [
        { name: 'a\\b', className: 'C#1', package: 'a.ts', language: 'typescript', method: 'worker' },
        { name: "<b>'x'", className: 'D', package: 'd.ts', language: 'typescript', method: 'worker' },
      ],
      edges: [
        {
          from: 'a\\b',
          to: "<b>'x'",
          fromLink: 'q_out',
          toLink: 'q_in',
          connection: 'c',
          label: 'q_out → q_in',
        },
      ],
    };
    expect(formatMermaid(odd)).toBe(
      'flowchart LR\n  n0["a\\b<br/>C#35;1"]\n  n1["#lt;b#gt;\'x\'<br/>D"]\n  n0 -- "q_out → q_in" --> n1',
    );
    expect(formatDot(odd)).toContain('  "a\\\\b" -> "<b>\'x\'" [label="q_out → q_in"];');
    if (existsSync(dot)) {
      const drawn = spawnSync(dot, ['-Tsvg'], { input: formatDot(odd), encoding: 'utf8' });
      expect(drawn.status).toBe(0);
      expect(drawn.stdout.match(/class="node"/g)).toHaveLength(2);
    }
  });
});

describe('formatSvg', () => {
  it('lays out a box per actor and a path per edge, all inside the viewBox, sources on the left', async () => {
    const fanGraph = await graphOfFile(fan);
    const svg = formatSvg(fanGraph);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ')).toBe(true);
    const elements = xmlElements(svg);
    expect(elements[0]).toBe('svg');
    expect(elements.filter((name) => name === 'rect').length).toBe(6 + 7); // boxes and label grounds

    const layout = layoutGraph(fanGraph);
    expect(svg).toContain(`viewBox="0 0 ${layout.width} ${layout.height}" width="${layout.width}"`);
    for (const name of ['Camera', 'Left', 'Right', 'Double', 'Sink&quot;A&quot;&lt;&amp;&gt;', 'Log']) {
      expect(svg).toContain(`<g class="actor" data-actor="${name}">`);
    }
    expect(svg).toContain('>Sink&quot;A&quot;&lt;&amp;&gt;</text>');
    expect(svg).toContain('>bun process on rig</text>');
    expect(svg).toContain('>q_out → q_in (capacity 8, drop-oldest)</text>');
    expect(svg.match(/<path class="edge" d="M[^"]+"/g)).toHaveLength(7);
    expect(svg.match(/marker-end="url\(#improv-graph-arrow\)"/g)).toHaveLength(7);
    expect(svg).toContain('fill="#fff6d5"'); // the Python actor

    const inside = (x: number, y: number) => {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(layout.width);
      expect(y).toBeLessThanOrEqual(layout.height);
    };
    for (const box of layout.nodes) {
      inside(box.x, box.y);
      inside(box.x + box.width, box.y + box.height);
    }
    for (const route of layout.edges) {
      expect(route.points.length).toBeGreaterThanOrEqual(2);
      for (const point of route.points) inside(point.x, point.y);
    }
    // Each route starts on its source's box and ends on its sink's.
    const onBorder = (box: NodeBox, { x, y }: { x: number; y: number }) => {
      const near = (a: number, b: number) => Math.abs(a - b) < 0.5;
      const within = x > box.x - 0.5 && x < box.x + box.width + 0.5 && y > box.y - 0.5 && y < box.y + box.height + 0.5;
      const side = near(x, box.x) || near(x, box.x + box.width) || near(y, box.y) || near(y, box.y + box.height);
      return within && side;
    };
    const box = (name: string) => layout.nodes.find((each) => each.node.name === name)!;
    for (const route of layout.edges) {
      const from = box(route.edge.from);
      const to = box(route.edge.to);
      const [first, last] = [route.points[0]!, route.points.at(-1)!];
      expect(onBorder(from, first)).toBe(true);
      expect(onBorder(to, last)).toBe(true);
    }
    // Left to right, rank by rank.
    expect(box('Camera').x + box('Camera').width).toBeLessThan(box('Left').x);
    const centre = (name: string) => box(name).x + box(name).width / 2;
    expect(centre('Left')).toBe(centre('Right'));
    expect(box('Double').x + box('Double').width).toBeLessThan(box('Sink"A"<&>').x);
  });

  it.skipIf(!existsSync(python))('is XML to a real parser', async () => {
    const svg = formatSvg(await graphOfFile(fan));
    const parsed = spawnSync(
      python,
      [
        '-c',
        'import sys, xml.dom.minidom as m; d = m.parseString(sys.stdin.buffer.read()); print(d.documentElement.tagName)',
      ],
      { input: svg, encoding: 'utf8' },
    );
    expect(parsed.stderr).toBe('');
    expect(parsed.stdout.trim()).toBe('svg');
  });

  it("draws an actor's links to itself, parallel edges, a lone actor and an empty graph", () => {
    const edge = (to: string, fromLink: string, toLink: string): GraphEdge => ({
      from: 'A',
      to,
      fromLink,
      toLink,
      connection: `A.${fromLink}`,
      label: `${fromLink} → ${toLink}`,
    });
    const looped: PipelineGraph = {
      nodes: ['A', 'B', 'Alone'].map((name) => ({
        name,
        className: 'X',
        package: 'x.ts',
        language: 'typescript' as const,
        method: 'worker' as const,
      })),
      edges: [edge('A', 'q_out', 'q_in'), edge('A', 'q_b', 'q_a'), edge('B', 'q_x', 'q_in'), edge('B', 'q_y', 'q_z')],
    };
    const layout = layoutGraph(looped);
    const [loop, second] = layout.edges;
    const a = layout.nodes[0]!;
    // A loop leaves and enters the top of its box, and the second one goes higher.
    expect(loop!.d).toMatch(/^M[\d.]+,[\d.]+ C/);
    expect(loop!.points[0]!.y).toBe(a.y);
    expect(loop!.points.at(-1)!.y).toBe(a.y);
    expect(second!.points[1]!.y).toBeLessThan(loop!.points[1]!.y);
    expect(second!.label.y + second!.label.height / 2).toBeLessThanOrEqual(loop!.label.y - loop!.label.height / 2);
    for (const route of layout.edges) expect(route.label.y - route.label.height / 2).toBeGreaterThanOrEqual(0);
    const svg = formatSvg(looped, { idPrefix: 'live 1' });
    expect(xmlElements(svg).filter((name) => name === 'path')).toHaveLength(1 + 4); // the marker's and the edges'
    expect(svg).toContain('<marker id="live_1-arrow"');
    expect(svg.match(/url\(#live_1-arrow\)/g)).toHaveLength(4);
    expect(svg).toContain('data-actor="Alone"');

    const empty = formatSvg({ nodes: [], edges: [] });
    expect(xmlElements(empty)).toEqual(['svg', 'defs', 'marker', 'path']);
    expect(empty).toContain('viewBox="0 0 40 40"');
  });
});

describe('graphCommand', () => {
  it('writes --out, in the format its ending names unless --format says', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'improv-graph-'));
    const svgFile = join(folder, 'fan.svg');
    expect(await graph(fan, { out: svgFile })).toEqual({
      code: 0,
      text: `wrote ${svgFile} (svg: 6 actor(s), 7 edge(s))`,
    });
    const svg = readFileSync(svgFile, 'utf8');
    expect(svg.endsWith('</svg>\n')).toBe(true);
    xmlElements(svg);

    const gv = join(folder, 'fan.gv');
    expect((await graph(fan, { out: gv })).code).toBe(0);
    expect(readFileSync(gv, 'utf8').startsWith('digraph pipeline {')).toBe(true);
    const mmd = join(folder, 'fan.mmd');
    expect((await graph(fan, { out: mmd })).code).toBe(0);
    expect(readFileSync(mmd, 'utf8')).toBe(`${fanMermaid}\n`);
    const forced = join(folder, 'forced.svg');
    expect(await graph(fan, { out: forced, format: 'mermaid' })).toEqual({
      code: 0,
      text: `wrote ${forced} (mermaid: 6 actor(s), 7 edge(s))`,
    });
  });

  it('answers an unknown format, with the close one when there is one', async () => {
    expect(await graph(minimal, { format: 'png' })).toEqual({
      code: 2,
      text: 'improv graph: unknown format "png"; use mermaid, dot or svg',
    });
    expect(await graph(minimal, { format: 'svgg' })).toEqual({
      code: 2,
      text: 'improv graph: unknown format "svgg"; did you mean "svg"? use mermaid, dot or svg',
    });
    expect((await graph(minimal, { format: 'Mermiad' })).text).toContain('did you mean "mermaid"?');
    // An --out whose ending names no format it writes: nothing is written into it.
    const png = join(mkdtempSync(join(tmpdir(), 'improv-graph-')), 'graph.png');
    expect(await graph(minimal, { out: png })).toEqual({
      code: 2,
      text: `improv graph: cannot tell what to write into ${png} from its ending: -o takes .svg (a drawing), .dot or .gv (Graphviz), or .mmd, .md or .txt (Mermaid); for a PNG, improv graph ${minimal} --format dot | dot -Tpng -o graph.png`,
    });
    expect(existsSync(png)).toBe(false);
  });

  it("prints a config's errors and draws nothing", async () => {
    const missing = join(tmpdir(), 'no-such-pipeline.yaml');
    const gone = await graph(missing);
    expect(gone.code).toBe(2);
    expect(gone.text).toMatch(/no-such-pipeline\.yaml: error: config file not found/);
    expect(gone.text.split('\n').at(-1)).toBe(`${missing}: 1 error(s); no graph drawn`);

    const folder = mkdtempSync(join(tmpdir(), 'improv-graph-'));
    const broken = join(folder, 'broken.yaml');
    writeFileSync(broken, 'actors:\n  A: { package: a.ts, class: A\nconnections: [\n');
    const yaml = await graph(broken, { format: 'svg' });
    expect(yaml.code).toBe(2);
    expect(yaml.text).toMatch(/broken\.yaml:\d+:\d+: error: /);
    expect(yaml.text).not.toContain('<svg');

    const unknown = join(folder, 'unknown.yaml');
    writeFileSync(
      unknown,
      `actors:\n  Generator: { package: ${join(root, 'packages/cli/template/actors/generator.ts')}, class: Generator }\nconnections:\n  Generator.q_out: [Procesor.q_in]\n`,
    );
    const typo = await graph(unknown);
    expect(typo.code).toBe(2);
    expect(typo.text).toContain('unknown.yaml:4:21: error: connection "Generator.q_out": endpoint "Procesor.q_in"');
  });

  it('says why --out cannot be written', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'improv-graph-'));
    const nowhere = join(folder, 'no-such-dir', 'g.mmd');
    expect(await graph(minimal, { out: nowhere })).toEqual({
      code: 2,
      text: `improv graph: cannot write --out ${nowhere}: folder ${join(folder, 'no-such-dir')} does not exist\n  fix: create it, or give a file in a folder that exists`,
    });
    const aFolder = join(folder, 'graphs');
    mkdirSync(aFolder);
    const isFolder = await graph(minimal, { out: aFolder, format: 'svg' });
    expect(isFolder.code).toBe(2);
    expect(isFolder.text).toBe(
      `improv graph: cannot write --out ${aFolder}: it is a folder\n  fix: give a file name, e.g. --out ${aFolder}/graph.svg`,
    );
  });

  it('has its help, and improv graph -o x.svg writes SVG through the command line too', async () => {
    const lines: string[] = [];
    const write = { write: (line: string) => lines.push(line), colour: false };
    expect(await main(['graph', '--help'], write)).toBe(0);
    expect(lines.join('\n')).toMatch(/--format <format>[\s\S]*-o, --out <file>/);
    expect(lines.join('\n')).toContain('improv graph pipeline.yaml --format dot | dot -Tpng -o graph.png');
    const out = join(mkdtempSync(join(tmpdir(), 'improv-graph-main-')), 'g.svg');
    expect(await main(['graph', minimal, '-o', out], write)).toBe(0);
    expect(readFileSync(out, 'utf8').startsWith('<svg')).toBe(true);
  });
});
