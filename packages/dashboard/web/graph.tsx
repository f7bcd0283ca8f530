/**
 * The pipeline graph as the server laid it out (dagre, as `improv graph -f svg` draws it): a box per
 * actor in its state's colour with its state on a tab (a failed actor in red, with its error under
 * it), a route per edge with an arrowhead, and at each edge's label the link's live rate, depth and
 * drops.
 * @module
 */
import type { LinkMetrics, SerializedError } from '@improv/core';
import { compact } from './format.ts';
import { type Live, linkKey } from './live.ts';
import { colourOf } from './states.ts';

/** The drawing is at least this wide (a small graph is centred in it), so an error line fits under a box. */
const MIN_WIDTH = 440;
/** Width of a character of the error line (10.5px monospace), for keeping it inside the drawing. */
const ERROR_CHAR = 6.4;
/** The drawing is never shown more than this much larger than the layout's units. */
const MAX_SCALE = 1.6;

function cut(text: string, length: number): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > length ? `${line.slice(0, length - 1)}…` : line;
}

/** A failed actor's error under its box: one line, cut to the drawing's width and kept inside it. */
function ErrorLine(props: { error: SerializedError; centre: number; y: number; left: number; width: number }) {
  const text = cut(`${props.error.name}: ${props.error.message}`, Math.floor((props.width - 8) / ERROR_CHAR));
  const half = (text.length * ERROR_CHAR) / 2;
  const x = Math.min(Math.max(props.centre, props.left + 4 + half), props.left + props.width - 4 - half);
  return (
    <text class="error" x={x} y={props.y}>
      {text}
    </text>
  );
}

export function Graph({ live }: { live: Live }) {
  const graph = live.graph;
  if (graph === undefined) {
    const waiting = live.connection === 'open' || live.connection === 'connecting';
    return <div class="empty-state">{waiting ? 'loading the graph…' : 'no graph'}</div>;
  }
  const { layout } = graph;
  const links = new Map<string, LinkMetrics>();
  for (const link of live.metrics?.links ?? []) {
    links.set(linkKey(link.connection, link.from.actor, link.from.link, link.to.actor, link.to.link), link);
  }
  // Room around the layout for the state tabs above boxes and error lines below them.
  const top = -24;
  const bottom = 30;
  const width = Math.max(layout.width, MIN_WIDTH);
  const left = -(width - layout.width) / 2;
  return (
    <svg
      class="graph"
      viewBox={`${left} ${top} ${width} ${layout.height - top + bottom}`}
      preserveAspectRatio="xMidYMid meet"
      style={{ maxWidth: `${Math.round(width * MAX_SCALE)}px` }}
      role="img"
      aria-label="the pipeline graph"
    >
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" class="arrow" />
        </marker>
        <marker id="arrow-live" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" class="arrow live" />
        </marker>
        <marker id="arrow-full" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" class="arrow full" />
        </marker>
      </defs>
      {layout.edges.map((route, index) => {
        const { edge } = route;
        const link = links.get(linkKey(edge.connection, edge.from, edge.fromLink, edge.to, edge.toLink));
        const state =
          link === undefined ? 'idle' : link.waiting ? 'full' : link.messagesPerSecond > 0 ? 'live' : 'idle';
        return (
          <g
            key={index}
            class={`edge ${state}`}
            data-connection={edge.connection}
            data-from={edge.from}
            data-to={edge.to}
          >
            <title>{`${edge.from}.${edge.fromLink} → ${edge.to}.${edge.toLink} (connection ${edge.connection})`}</title>
            <path d={route.d} marker-end={`url(#${state === 'idle' ? 'arrow' : `arrow-${state}`})`} />
          </g>
        );
      })}
      {layout.edges.map((route, index) => {
        const { edge, label } = route;
        const link = links.get(linkKey(edge.connection, edge.from, edge.fromLink, edge.to, edge.toLink));
        const dropping = link !== undefined && link.droppedPerSecond > 0;
        // Above the route: the rate, then depth and drops; under it, the link's own label.
        return (
          <g key={index} class="edge-label" data-connection={edge.connection}>
            <text x={label.x} y={label.y - 16} class={`rate${link?.waiting ? ' full' : ''}`}>
              {link === undefined ? '–' : `${compact(link.messagesPerSecond)} msg/s`}
            </text>
            <text
              x={label.x}
              y={label.y - 5}
              class={`queue${dropping ? ' dropping' : ''}${link?.waiting ? ' full' : ''}`}
            >
              {link === undefined ? '' : `${link.depth}/${link.capacity} · ${compact(link.dropped)} dropped`}
            </text>
            <text x={label.x} y={label.y + 11} class="static">
              {edge.label}
            </text>
          </g>
        );
      })}
      {layout.nodes.map((box) => {
        const name = box.node.name;
        const view = live.actors.get(name);
        const state = view?.state ?? 'starting';
        const colour = colourOf(state);
        const failed = state === 'failed';
        const centre = box.x + box.width / 2;
        const tab = state.length * 6 + 12;
        const error = view?.error;
        return (
          <g key={name} class={`actor${failed ? ' failed' : ''}`} data-actor={name} data-state={state}>
            <title>
              {`${name}: ${box.node.className} from ${box.node.package} — ${state}${
                error === undefined ? '' : `\n${error.name}: ${error.message}`
              }`}
            </title>
            <rect
              class="box"
              x={box.x}
              y={box.y}
              width={box.width}
              height={box.height}
              rx={7}
              fill={colour}
              fill-opacity={failed ? 0.28 : 0.13}
              stroke={colour}
              stroke-width={failed ? 3 : 1.5}
            />
            {box.lines.map((line, index) => (
              <text key={index} x={centre} y={box.y + 9 + index * 16 + 12} class={index === 0 ? 'name' : 'sub'}>
                {line}
              </text>
            ))}
            <rect
              class="tab"
              x={box.x + box.width - tab - 8}
              y={box.y - 7}
              width={tab}
              height={14}
              rx={7}
              fill={colour}
            />
            <text class="tab-text" x={box.x + box.width - tab / 2 - 8} y={box.y + 3.5}>
              {state}
            </text>
            {failed && error !== undefined && (
              <ErrorLine error={error} centre={centre} y={box.y + box.height + 14} left={left} width={width} />
            )}
          </g>
        );
      })}
    </svg>
  );
}
