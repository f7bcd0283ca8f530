/**
 * The control plane's metrics: a row per actor (state, steps/s over the last 2 minutes, errors,
 * step time, load) and per link (msgs/s over time, bytes/s, depth, drops, latency), and the store's use.
 * @module
 */
import type { ActorMetrics, LinkMetrics } from '@improv/core';
import { memo } from 'preact/compat';
import { useLayoutEffect } from 'preact/hooks';
import { uPlot, useChart } from './chart.ts';
import { bytes, compact, ms, percent } from './format.ts';
import { type Live, linkKey } from './live.ts';
import { colourOf, revivable } from './states.ts';

/** A tiny chart of one metrics column over the last 2 minutes, redrawn as samples come. */
const Sparkline = memo(function Sparkline({ live, column, colour }: { live: Live; column: string; colour: string }) {
  const data = (): uPlot.AlignedData => [live.history.times, live.history.columns.get(column) ?? []];
  const [box, chart] = useChart(
    (element, width, height) =>
      new uPlot(
        {
          width,
          height,
          series: [{}, { stroke: colour, fill: `${colour}33`, width: 1, points: { show: false } }],
          scales: { x: { time: false }, y: { range: (_chart, _min, max) => [0, max > 0 ? max * 1.15 : 1] } },
          axes: [{ show: false }, { show: false }],
          legend: { show: false },
          cursor: { show: false },
        },
        data(),
        element,
      ),
    [column, colour],
  );
  useLayoutEffect(
    () =>
      live.onMetrics(() => {
        chart.current?.setData(data());
      }),
    [live, column, chart],
  );
  return <div class="spark" ref={box} />;
});

function ActorRow({ actor: sampled, live }: { actor: ActorMetrics; live: Live }) {
  // The state as events last said (metrics come every 500 ms; the graph shows the same).
  const actor = { ...sampled, state: live.actors.get(sampled.name)?.state ?? sampled.state };
  const colour = colourOf(actor.state);
  return (
    <tr class={actor.state === 'failed' ? 'failed' : ''}>
      <td
        class="name"
        title={`${actor.name}: ${actor.process === undefined ? 'a worker' : `${actor.process.runtime} process ${actor.process.pid}`}`}
      >
        {actor.name}
      </td>
      <td>
        <span class="state-dot" style={{ background: colour }} />
        <span style={{ color: colour }}>{actor.state}</span>
      </td>
      <td class="spark-cell">
        <Sparkline live={live} column={`actor:${actor.name}`} colour={colour} />
      </td>
      <td class="num">{compact(actor.stepsPerSecond)}</td>
      <td class={`num${actor.errorsPerSecond > 0 ? ' bad' : ''}`} title={`${actor.errors} in all`}>
        {compact(actor.errorsPerSecond)}
      </td>
      <td class="num">
        {ms(actor.stepMs?.p50)}
        <span class="dim"> / </span>
        {ms(actor.stepMs?.p99)}
      </td>
      <td class="num" title={actor.elu === undefined ? '' : `event loop ${percent(actor.elu)} busy`}>
        {actor.cpu !== undefined ? percent(actor.cpu) : actor.elu !== undefined ? `${percent(actor.elu)}e` : '–'}
      </td>
      <td class="num">{bytes(actor.heapBytes)}</td>
      <td class="num">{actor.restarts}</td>
      <td>
        {revivable(actor.state) && (
          <button
            type="button"
            class="small"
            data-revive={actor.name}
            title={`revive ${actor.name}: start it again`}
            onClick={() => void live.command(`revive ${actor.name}`)}
          >
            revive
          </button>
        )}
      </td>
    </tr>
  );
}

function LinkRow({ link, live }: { link: LinkMetrics; live: Live }) {
  const key = linkKey(link.connection, link.from.actor, link.from.link, link.to.actor, link.to.link);
  const fill = link.capacity > 0 ? Math.min(1, link.depth / link.capacity) : 0;
  return (
    <tr data-link={link.connection}>
      <td
        class="name"
        title={`${link.from.actor}.${link.from.link} → ${link.to.actor}.${link.to.link} (connection ${link.connection}, ${link.policy})`}
      >
        {link.from.actor} → {link.to.actor}
      </td>
      <td class="spark-cell">
        <Sparkline live={live} column={`link:${key}`} colour="#79c0ff" />
      </td>
      <td class="num">{compact(link.messagesPerSecond)}</td>
      <td class="num">{link.bytesPerSecond === undefined ? '–' : `${bytes(link.bytesPerSecond)}/s`}</td>
      <td
        class="depth"
        title={`${link.depth} of ${link.capacity} waiting${link.waiting ? '; the producer waits for room' : ''}`}
      >
        <span class={`bar${link.waiting ? ' full' : ''}`}>
          <span style={{ width: `${(fill * 100).toFixed(1)}%` }} />
        </span>
        <span class="num">
          {link.depth}/{link.capacity}
        </span>
      </td>
      <td
        class={`num${link.droppedPerSecond > 0 ? ' bad' : ''}`}
        title={`${link.dropped} dropped in all (${link.policy})`}
      >
        {compact(link.droppedPerSecond)}
      </td>
      <td class="num">
        {ms(link.latencyMs?.p50)}
        <span class="dim"> / </span>
        {ms(link.latencyMs?.p99)}
      </td>
    </tr>
  );
}

export function Metrics({ live }: { live: Live }) {
  const metrics = live.metrics;
  if (metrics === undefined) return <div class="empty-state">waiting for the first metrics…</div>;
  const store = metrics.store;
  const used = store === undefined || store.capacityBytes === 0 ? 0 : store.usedBytes / store.capacityBytes;
  return (
    <div class="metrics">
      <table class="table">
        <thead>
          <tr>
            <th>actor</th>
            <th>state</th>
            <th>steps/s</th>
            <th class="num">step/s</th>
            <th class="num">err/s</th>
            <th class="num" title="time in runStep(): median / 99th percentile, ms">
              step p50/p99 ms
            </th>
            <th class="num" title="CPU of its thread or process (e: event-loop use)">
              cpu
            </th>
            <th class="num">heap</th>
            <th class="num" title="restarts">
              rst
            </th>
            <th />
          </tr>
        </thead>
        <tbody>
          {metrics.actors.map((actor) => (
            <ActorRow key={actor.name} actor={actor} live={live} />
          ))}
        </tbody>
      </table>
      <table class="table">
        <thead>
          <tr>
            <th>link</th>
            <th>msgs/s</th>
            <th class="num">msg/s</th>
            <th class="num">bytes/s</th>
            <th>depth</th>
            <th class="num">drops/s</th>
            <th class="num" title="send to read: median / 99th percentile, ms (messages with a t)">
              latency ms
            </th>
          </tr>
        </thead>
        <tbody>
          {metrics.links.map((link) => (
            <LinkRow
              key={linkKey(link.connection, link.from.actor, link.from.link, link.to.actor, link.to.link)}
              link={link}
              live={live}
            />
          ))}
        </tbody>
      </table>
      {store !== undefined && (
        <div class="store" title={`${store.usedBytes} of ${store.capacityBytes} bytes`}>
          <span>store {store.driver}</span>
          <span class={`bar${used > 0.9 ? ' full' : ''}`}>
            <span style={{ width: `${(used * 100).toFixed(1)}%` }} />
          </span>
          <span class="num">
            {bytes(store.usedBytes)} / {bytes(store.capacityBytes)} ({(used * 100).toFixed(0)}%), {store.objects}{' '}
            objects
          </span>
        </div>
      )}
    </div>
  );
}
