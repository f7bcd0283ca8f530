// improv graph: Mermaid, dot and a laid-out SVG of a pipeline, and its errors.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const minimal = join(root, 'apps/minimal/minimal.yaml');
const fan = fileURLToPath(new URL('./fixtures/graph/fan.yaml', import.meta.url));

async function cli(argv: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(argv, { write: (line) => lines.push(line), colour: false });
  return { code, text: lines.join('\n') };
}

describe('improv graph', () => {
  it('prints Mermaid by default', async () => {
    expect(await cli(['graph', minimal])).toEqual({
      code: 0,
      text: 'flowchart LR\n  n0["Generator"]\n  n1["Processor"]\n  n0 -- "q_out → q_in" --> n1',
    });
  });

  it('draws every source → sink pair of fan-out and fan-in, with capacity, policy and placement', async () => {
    const mermaid = await cli(['graph', fan, '--format', 'mermaid']);
    expect(mermaid.code).toBe(0);
    expect(mermaid.text).toContain('n0["Camera<br/>Generator"]');
    expect(mermaid.text).toContain('n2["Right<br/>Processor<br/>bun process"]');
    expect(mermaid.text).toContain('n3["Sink#quot;A#quot;<br/>Processor"]');
    expect(mermaid.text).toContain('n0 -- "q_out → q_in (capacity 8, drop-oldest)" --> n1');
    expect(mermaid.text).toContain('n0 -- "q_out → q_in (capacity 8, drop-oldest)" --> n2');
    expect(mermaid.text).toContain('n1 -- "q_out → q_in" --> n3');
    expect(mermaid.text).toContain('n2 -- "q_out → q_in" --> n3');

    const dot = await cli(['graph', fan, '--format', 'DOT']);
    expect(dot.code).toBe(0);
    expect(dot.text.split('\n')[0]).toBe('digraph pipeline {');
    expect(dot.text).toContain('"Sink\\"A\\"" [label="Sink\\"A\\"\\nProcessor"];');
    expect(dot.text).toContain('"Camera" -> "Right" [label="q_out → q_in (capacity 8, drop-oldest)"];');
    expect(dot.text.match(/ -> /g)).toHaveLength(4);
    expect(dot.text.trim().endsWith('}')).toBe(true);
  });

  it('writes a laid-out SVG: a box per actor, a path per edge, all inside its viewBox', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'improv-graph-')), 'fan.svg');
    const result = await cli(['graph', fan, '--format', 'svg', '-o', out]);
    expect(result).toEqual({ code: 0, text: `wrote ${out} (svg: 4 actors, 4 edges)` });
    const svg = readFileSync(out, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<g class="actor"/g)).toHaveLength(4);
    expect(svg.match(/<path class="edge"/g)).toHaveLength(4);
    expect(svg).toContain('data-actor="Sink&quot;A&quot;"');
    const [, , , width, height] = /viewBox="(\S+) (\S+) (\S+) (\S+)"/.exec(svg)!.map(Number);
    const boxes = [...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/g)];
    expect(boxes).toHaveLength(4);
    for (const [, x, y, w, h] of boxes) {
      expect(Number(x) + Number(w)).toBeLessThanOrEqual(width!);
      expect(Number(y) + Number(h)).toBeLessThanOrEqual(height!);
    }
    // Left to right: the camera is left of everything it feeds.
    const xOf = (name: string) => Number(new RegExp(`data-actor="${name}"><rect x="([\\d.]+)"`).exec(svg)![1]);
    expect(xOf('Camera')).toBeLessThan(xOf('Left'));
    expect(xOf('Left')).toBeLessThan(xOf('Sink&quot;A&quot;'));
  });

  it('answers a bad format, a missing file and an unwritable --out', async () => {
    expect(await cli(['graph', minimal, '--format', 'svgg'])).toEqual({
      code: 2,
      text: 'improv graph: unknown format "svgg"; did you mean "svg"? use mermaid, dot, svg',
    });
    const missing = await cli(['graph', join(tmpdir(), 'no-such-pipeline.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.text).toMatch(/no-such-pipeline\.yaml: error: config file not found/);
    const unwritable = await cli(['graph', minimal, '-o', join(tmpdir(), 'no-such-dir', 'x', 'g.mmd')]);
    expect(unwritable.code).toBe(2);
    expect(unwritable.text).toMatch(/^improv graph: cannot write .*g\.mmd: .*; give a file you can write to/);
  });
});
