/**
 * The page: a header (the run, its state, the command buttons); on the left the graph, the metrics
 * and the log; on the right, the whole height, the plots.
 * @module
 */
import type { SerializedError } from '@improv/core';
import { useEffect, useRef, useState } from 'preact/hooks';
import { clock, uptime } from './format.ts';
import { Graph } from './graph.tsx';
import type { Live } from './live.ts';
import { LogPanel } from './log.tsx';
import { Metrics } from './metrics.tsx';
import { PlotsArea } from './plots.tsx';
import { type CommandButton, colourOf, commandApplies, commandButtons, revivable, transitional } from './states.ts';

function useLive(live: Live): void {
  const [, setVersion] = useState(0);
  useEffect(() => {
    live.start();
    return live.onChange(() => setVersion((version) => version + 1));
  }, [live]);
}

/** Re-renders every second (the uptime). */
function useTick(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

/** The run's uptime: ticks on its own, so the second hand re-renders this text and not the page. */
function Uptime({ startedAt, end }: { startedAt: number; end: number | undefined }) {
  const now = useTick();
  return (
    <span class="dim" title={`started ${new Date(startedAt).toLocaleString()}`}>
      up {uptime((end ?? now) - startedAt)}
    </span>
  );
}

function statusOf(live: Live): { state: string; text: string } {
  switch (live.connection) {
    case 'open':
      return { state: live.pipelineState ?? 'starting', text: live.pipelineState ?? 'starting' };
    case 'connecting':
      return { state: 'connecting', text: 'connecting…' };
    case 'closed':
      return { state: 'closed', text: 'pipeline quit' };
    case 'lost':
      return { state: 'lost', text: 'connection lost' };
    case 'refused':
      return { state: 'refused', text: 'refused' };
    case 'no-token':
      return { state: 'no-token', text: 'no token' };
  }
}

function CommandButtons({ live, state }: { live: Live; state: string }) {
  const anyFailed = [...live.actors.values()].some((actor) => actor.state === 'failed');
  const [confirming, setConfirming] = useState(false);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const open = live.connection === 'open';
  const busy = new Set([...live.pending.values()].map((pending) => pending.line));
  const click = (command: CommandButton) => {
    // Quitting ends the experiment: a second click within 4 s confirms it.
    if (command === 'quit' && !confirming) {
      setConfirming(true);
      clearTimeout(timer.current);
      timer.current = setTimeout(() => setConfirming(false), 4000);
      return;
    }
    setConfirming(false);
    void live.command(command);
  };
  return (
    <div class="commands">
      {commandButtons.map((command) => {
        const applies = open && commandApplies(command, state, anyFailed);
        return (
          <button
            type="button"
            key={command}
            data-command={command}
            class={`command ${command}${confirming && command === 'quit' ? ' confirm' : ''}${busy.has(command) ? ' busy' : ''}`}
            disabled={!applies}
            title={
              applies
                ? `${command} the pipeline`
                : anyFailed && commandApplies(command, state)
                  ? 'not while an actor has failed: revive it, or quit and start again'
                  : `not while the pipeline is ${state}`
            }
            onClick={() => click(command)}
          >
            {command === 'quit' && confirming ? 'quit? click again' : command}
          </button>
        );
      })}
    </div>
  );
}

function Result({ live }: { live: Live }) {
  const last = live.lastResult;
  if (last === undefined) return <div class="result" />;
  return (
    <div
      class={`result ${last.result.ok ? 'ok' : 'refused'}`}
      data-result={last.result.ok ? 'ok' : 'refused'}
      title={`${last.line}: ${last.result.message}`}
    >
      <span class="dim">{clock(last.at, false)} </span>
      {!last.result.message.startsWith(last.line) && <span class="line">{last.line}: </span>}
      {last.result.message}
    </div>
  );
}

function Failures({ live }: { live: Live }) {
  const failed: [string, SerializedError | undefined, string][] = [];
  for (const [name, view] of live.actors) {
    if (view.state === 'failed' || (view.state === 'exited' && view.error !== undefined))
      failed.push([name, view.error, view.state]);
  }
  if (failed.length === 0) return null;
  return (
    <div class="failures">
      {failed.map(([name, error, state]) => (
        <div class="failure" key={name} data-failure={name}>
          <b>{name}</b> {state}
          {error !== undefined && (
            <>
              : <span class="error-text">{`${error.name}: ${error.message}`}</span>
            </>
          )}
          {revivable(state) && live.connection === 'open' && (
            <button type="button" class="small" data-revive={name} onClick={() => void live.command(`revive ${name}`)}>
              revive {name}
            </button>
          )}
          {error?.stack !== undefined && (
            <details>
              <summary>stack</summary>
              <pre>{error.stack}</pre>
            </details>
          )}
        </div>
      ))}
    </div>
  );
}

export function App({ live }: { live: Live }) {
  useLive(live);
  const info = live.info;
  const status = statusOf(live);
  const pipelineFile = info?.pipeline.split(/[\\/]/).at(-1) ?? '';
  return (
    <div class="app">
      <header class="top">
        <span class="brand">improv</span>
        {info !== undefined && (
          <span class="run">
            <b title="run id">{info.id}</b>
            <span title={info.pipeline}>{pipelineFile}</span>
            <span class="dim" title={`server process ${info.pid}`}>
              {info.runtime} · improv {info.version}
            </span>
            <Uptime startedAt={info.startedAt} end={live.closedAt} />
          </span>
        )}
        <span
          class={`status${transitional.has(status.state) ? ' moving' : ''}`}
          data-status
          data-state={status.state}
          style={{ '--state': colourOf(status.state) }}
        >
          {status.text}
        </span>
        <CommandButtons
          live={live}
          state={live.connection === 'open' ? (live.pipelineState ?? 'starting') : status.state}
        />
        <Result live={live} />
      </header>
      {live.connection === 'closed' && (
        <div class="banner closed">
          The pipeline quit at {clock(live.closedAt ?? Date.now(), false)}. This is its last view; start it again to go
          on.
        </div>
      )}
      {live.problem !== undefined && live.connection !== 'open' && <div class="banner problem">{live.problem}</div>}
      <Failures live={live} />
      <main class="main">
        <div class="left">
          <section class="panel graph-panel">
            <header class="panel-head">
              <span class="panel-title">pipeline</span>
              <span class="legend">
                {(['waiting', 'ready', 'running', 'paused', 'stopped', 'failed'] as const).map((state) => (
                  <span key={state} class="legend-item">
                    <span class="state-dot" style={{ background: colourOf(state) }} />
                    {state}
                  </span>
                ))}
              </span>
            </header>
            <div class="graph-box">
              <Graph live={live} />
            </div>
          </section>
          <section class="panel metrics-panel">
            <header class="panel-head">
              <span class="panel-title">metrics</span>
              <span class="dim cut" title="every 0.5 s; charts: last 2 minutes">
                every 0.5 s; charts: last 2 minutes
              </span>
            </header>
            <Metrics live={live} />
          </section>
          <LogPanel live={live} />
        </div>
        <section class="panel plots-panel">
          <header class="panel-head">
            <span class="panel-title">plots</span>
            <span class="dim cut" title="what actors publish; drawn at most once a frame">
              what actors publish; drawn at most once a frame
            </span>
          </header>
          <PlotsArea live={live} />
        </section>
      </main>
    </div>
  );
}
