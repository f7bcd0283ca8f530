/**
 * A panel per published stream (`actor/name`), made when the stream first arrives: a scrolling
 * time series, a line, an image with a colour map and range, a scatter, or text. Panels draw
 * imperatively when the plot store's frame loop calls them — never through a re-render.
 * @module
 */
import { memo } from 'preact/compat';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { axis, clockValues, colourFor, shortValues, uPlot, useChart } from './chart.ts';
import type { Numbers } from './classify.ts';
import { compact } from './format.ts';
import { type ColourMap, colourMaps, lut, mayHoldNotFinite, range, toColourPixels, toPixels } from './image.ts';
import type { Live } from './live.ts';
import { type PlotStore, rateOf, type Stream } from './plot-store.ts';
import type { SeriesData } from './series.ts';

/**
 * Called by a kind's drawing after it drew; `detail` is a short description (`uint16 512×512`),
 * `note` what the panel could not show as given (empty: nothing).
 */
type Drawn = (detail?: string, note?: string) => void;

/** The note of a panel that left out `count` values: `3 values not finite (NaN/±Infinity) not drawn`. */
function notFiniteNote(count: number, what = 'not drawn'): string {
  if (count === 0) return '';
  return `${count} value${count === 1 ? '' : 's'} not finite (NaN/±Infinity) ${what}`;
}

/** The first `count` points of `x` and `y` whose x and y are both finite. */
function finitePoints(x: ArrayLike<number>, y: ArrayLike<number>, count: number): [number[], number[]] {
  const keptX: number[] = [];
  const keptY: number[] = [];
  for (let index = 0; index < count; index++) {
    if (Number.isFinite(x[index]) && Number.isFinite(y[index])) {
      keptX.push(x[index]!);
      keptY.push(y[index]!);
    }
  }
  return [keptX, keptY];
}

/** Sets the text of a header's element and its title (the whole text, where the element cuts it). */
function show(element: HTMLElement, text: string): void {
  element.textContent = text;
  element.title = text;
}

/** `y` with each value that is not finite as null (a gap, as uPlot draws one). */
function withGaps(y: ArrayLike<number>): (number | null)[] {
  return Array.from(y, (value) => (Number.isFinite(value) ? value : null));
}

interface KindProps {
  stream: Stream;
  store: PlotStore;
  drawn: Drawn;
}

/** Registers `draw` as the stream's drawing while the component is mounted, and draws once at once. */
function useDraw(props: KindProps, draw: () => void, deps: unknown[]): void {
  const { stream, store, drawn } = props;
  useLayoutEffect(() => {
    stream.draw = draw;
    store.redraw(stream);
    return () => {
      if (stream.draw === draw) stream.draw = undefined;
    };
  }, [stream, store, drawn, ...deps]);
}

export const PlotsArea = memo(function PlotsArea({ live }: { live: Live }) {
  const store = live.plots;
  const [, setVersion] = useState(0);
  useEffect(() => store.onChange(() => setVersion((version) => version + 1)), [store]);
  // Images first (the largest panels), then series, lines, scatters, text; by arrival within a kind.
  const streams = [...store.streams.values()].sort((a, b) => kindOrder.indexOf(a.kind) - kindOrder.indexOf(b.kind));
  if (streams.length === 0) {
    return (
      <div class="plots-empty">
        <p>No plots yet.</p>
        <p>
          An actor shows values here with <code>this.publish(name, value)</code>, or through the built-in{' '}
          <code>Plot</code> actor (<code>package: '@improv/dashboard/plot'</code>). A panel appears when its first value
          arrives.
        </p>
      </div>
    );
  }
  return (
    <div class="plots">
      {streams.map((stream) => (
        <PlotPanel key={`${stream.key}\u0000${stream.kind}`} stream={stream} store={store} />
      ))}
    </div>
  );
});

const kindOrder: readonly Stream['kind'][] = ['image', 'series', 'line', 'scatter', 'text'];

const kindNames: Record<Stream['kind'], string> = {
  series: 'time series',
  line: 'line',
  image: 'image',
  scatter: 'scatter',
  text: 'text',
};

function PlotPanel({ stream, store }: { stream: Stream; store: PlotStore }) {
  const root = useRef<HTMLElement>(null);
  const meta = useRef<HTMLSpanElement>(null);
  const detail = useRef<HTMLSpanElement>(null);
  const note = useRef<HTMLDivElement>(null);
  const shownAt = useRef(0);
  const showMeta = useCallback(() => {
    const unit = stream.kind === 'series' ? ' points/s' : '/s';
    if (meta.current !== null) show(meta.current, `${compact(rateOf(stream))}${unit} · skipped ${stream.skipped}`);
  }, [stream]);
  const drawn = useCallback<Drawn>(
    (text, warning = '') => {
      stream.updates += 1;
      root.current?.setAttribute('data-updates', String(stream.updates));
      // The note follows every frame (written only when it changes): it says why a chart is empty.
      const element = note.current;
      if (element !== null && element.textContent !== warning) {
        show(element, warning);
        element.hidden = warning === '';
      }
      const now = performance.now();
      if (now - shownAt.current < 250) return;
      shownAt.current = now;
      showMeta();
      if (text !== undefined && detail.current !== null) show(detail.current, text);
    },
    [stream, showMeta],
  );
  // The rate falls to 0 when nothing comes: refresh it now and then without data.
  useEffect(() => {
    const timer = setInterval(showMeta, 1000);
    return () => clearInterval(timer);
  }, [showMeta]);
  const props: KindProps = { stream, store, drawn };
  return (
    <section
      class={`panel plot kind-${stream.kind}`}
      data-stream={stream.key}
      data-kind={stream.kind}
      data-updates="0"
      ref={root}
    >
      <header class="panel-head">
        <span class="plot-name cut" title={`${stream.key}: published by ${stream.actor} as "${stream.name}"`}>
          <span class="dim">{stream.actor}/</span>
          {stream.name}
        </span>
        <span class="tag">{kindNames[stream.kind]}</span>
        <span class="plot-detail dim cut" ref={detail} />
        <span class="plot-meta cut" ref={meta} />
      </header>
      <div class="plot-note cut" ref={note} hidden />
      <div class="plot-body">
        {stream.kind === 'series' ? (
          <SeriesPlot {...props} />
        ) : stream.kind === 'line' ? (
          <LinePlot {...props} />
        ) : stream.kind === 'image' ? (
          <ImagePlot {...props} />
        ) : stream.kind === 'scatter' ? (
          <ScatterPlot {...props} />
        ) : (
          <TextPlot {...props} />
        )}
      </div>
    </section>
  );
}

function seriesData(series: SeriesData): uPlot.AlignedData {
  return [series.times, ...series.fields.map((field) => series.columns.get(field)!)];
}

function SeriesPlot(props: KindProps) {
  const { stream } = props;
  const fields = stream.series?.fields ?? [];
  const fieldsKey = fields.join('\u0000');
  const [box, chart] = useChart(
    (element, width, height) =>
      new uPlot(
        {
          width,
          height,
          series: [
            {},
            ...fields.map((field, index) => ({
              label: field,
              stroke: colourFor(index),
              // 1 px: Skia draws it as a hairline; a wider line goes through its stroker, several times the cost.
              width: 1,
              value: (_chart: uPlot, value: number | null) => (value === null ? '–' : compact(value)),
            })),
          ],
          scales: { x: { time: true } },
          axes: [axis({ values: clockValues, size: 28 }), axis({ values: shortValues, size: 46 })],
          legend: { show: fields.length <= 16, live: true },
          cursor: { points: { size: 6 } },
        },
        stream.series === undefined ? [[]] : seriesData(stream.series),
        element,
      ),
    [fieldsKey],
  );
  useDraw(props, () => {
    const series = stream.series;
    if (series === undefined || chart.current === undefined) return;
    chart.current.setData(seriesData(series));
    // A field a point lacked comes as NaN too: with several fields, the note says so.
    const absent = series.fields.length > 1 ? ' or absent,' : '';
    props.drawn(
      `${series.fields.length} field${series.fields.length === 1 ? '' : 's'}, last 30 s`,
      notFiniteNote(series.notFinite, `${absent} not drawn`.trimStart()),
    );
  }, [fieldsKey]);
  return <div class="chart" ref={box} />;
}

function LinePlot(props: KindProps) {
  const { stream } = props;
  // The x axis, 0, 1, 2, … n - 1: made again only when the length changes.
  const indices = useRef(new Float64Array(0));
  const indexAxis = (length: number) => {
    if (indices.current.length !== length) indices.current = Float64Array.from({ length }, (_, index) => index);
    return indices.current;
  };
  const [box, chart] = useChart(
    (element, width, height) =>
      new uPlot(
        {
          width,
          height,
          series: [{ label: 'index' }, { label: 'value', stroke: colourFor(0), width: 1, points: { show: false } }],
          scales: { x: { time: false } },
          axes: [axis({ values: shortValues }), axis({ values: shortValues, size: 46 })],
          legend: { show: false },
          cursor: { points: { size: 5 } },
        },
        [[], []],
        element,
      ),
    [],
  );
  useDraw(props, () => {
    const shown = stream.latest;
    if (shown?.kind !== 'line' || chart.current === undefined) return;
    const x = indexAxis(shown.y.length);
    const { min, max, notFinite } = range(shown.y, shown.y.length);
    // uPlot draws a gap for null; NaN or ±Infinity would spoil the scale and leave the chart empty.
    chart.current.setData([x, notFinite === 0 ? (shown.y as number[]) : withGaps(shown.y)]);
    props.drawn(`${shown.y.length} values, ${compact(min)} … ${compact(max)}`, notFiniteNote(notFinite));
  }, []);
  return <div class="chart" ref={box} />;
}

function ScatterPlot(props: KindProps) {
  const { stream } = props;
  const [box, chart] = useChart(
    (element, width, height) =>
      new uPlot(
        {
          mode: 2,
          width,
          height,
          series: [
            {},
            {
              label: stream.name,
              stroke: colourFor(1),
              fill: `${colourFor(1)}99`,
              paths: uPlot.paths.points!(),
              points: { show: false },
              facets: [
                { scale: 'x', auto: true },
                { scale: 'y', auto: true },
              ],
            },
          ],
          scales: { x: { time: false } },
          axes: [axis({ values: shortValues }), axis({ values: shortValues, size: 46 })],
          legend: { show: false },
          cursor: { show: false },
        },
        [null, [[], []]] as unknown as uPlot.AlignedData,
        element,
      ),
    [],
  );
  useDraw(props, () => {
    const shown = stream.latest;
    if (shown?.kind !== 'scatter' || chart.current === undefined) return;
    const count = Math.min(shown.x.length, shown.y.length);
    const notFinite = range(shown.x, count).notFinite + range(shown.y, count).notFinite;
    // Only points whose x and y are both finite (NaN or ±Infinity would spoil the scales).
    const [x, y] = notFinite === 0 ? [shown.x, shown.y] : finitePoints(shown.x, shown.y, count);
    chart.current.setData([null, [x, y]] as unknown as uPlot.AlignedData);
    props.drawn(`${count} points`, notFiniteNote(notFinite));
  }, []);
  return <div class="chart" ref={box} />;
}

function TextPlot(props: KindProps) {
  const { stream } = props;
  const text = useRef<HTMLPreElement>(null);
  useDraw(props, () => {
    const shown = stream.latest;
    if (shown?.kind !== 'text' || text.current === null) return;
    text.current.textContent = shown.text;
    props.drawn();
  }, []);
  return <pre class="plot-text" ref={text} />;
}

interface ImageState {
  context?: CanvasRenderingContext2D;
  image?: ImageData;
  pixels?: Uint32Array;
  /** The range the last frame was drawn with. */
  min: number;
  max: number;
  rows: number;
  cols: number;
}

function ImagePlot(props: KindProps) {
  const { stream } = props;
  const canvas = useRef<HTMLCanvasElement>(null);
  const bar = useRef<HTMLCanvasElement>(null);
  const minInput = useRef<HTMLInputElement>(null);
  const maxInput = useRef<HTMLInputElement>(null);
  const readout = useRef<HTMLSpanElement>(null);
  const [map, setMap] = useState<ColourMap>('viridis');
  const [auto, setAuto] = useState(true);
  // What the drawing reads: kept in a ref so that a setting never re-registers the drawing.
  const settings = useRef({ map, auto, min: 0, max: 1 });
  settings.current.map = map;
  settings.current.auto = auto;
  const state = useRef<ImageState>({ min: 0, max: 0, rows: 0, cols: 0 });
  const inputsAt = useRef(0);

  useDraw(props, () => {
    const shown = stream.latest;
    const element = canvas.current;
    if (shown?.kind !== 'image' || element === null) return;
    const { rows, cols, channels, array } = shown;
    const held = state.current;
    if (held.image === undefined || held.rows !== rows || held.cols !== cols) {
      element.width = cols;
      element.height = rows;
      const context = element.getContext('2d', { alpha: false });
      if (context === null) return;
      held.context = context;
      held.image = context.createImageData(cols, rows);
      held.pixels = new Uint32Array(held.image.data.buffer);
      held.rows = rows;
      held.cols = cols;
    }
    const count = rows * cols;
    const fixed = settings.current;
    // The automatic range is that of the finite values; a fixed one still counts the others for the note.
    const values = fixed.auto || mayHoldNotFinite(array) ? range(array, count * channels) : undefined;
    const { min, max } = fixed.auto ? values! : fixed;
    if (channels === 1) toPixels(array, count, min, max, lut(fixed.map), held.pixels!, fixed.auto ? values : undefined);
    else toColourPixels(array, count, channels, min, max, held.pixels!);
    held.context!.putImageData(held.image, 0, 0);
    held.min = min;
    held.max = max;
    // While the range is automatic, its inputs follow it (a few times a second; not while typed in).
    const now = performance.now();
    if (fixed.auto && now - inputsAt.current > 250) {
      inputsAt.current = now;
      for (const [input, value] of [
        [minInput.current, min],
        [maxInput.current, max],
      ] as const) {
        if (input !== null && document.activeElement !== input) input.value = String(+value.toPrecision(6));
      }
    }
    props.drawn(
      `${shown.dtype} ${rows}×${cols}${channels === 1 ? '' : `×${channels}`}`,
      notFiniteNote(
        values?.notFinite ?? 0,
        'left out of the range (NaN and -Infinity drawn in its first colour, +Infinity in its last)',
      ),
    );
  }, []);

  // The colour bar under the image, and a redraw of the frame in the new map.
  useEffect(() => {
    const element = bar.current;
    const context = element?.getContext('2d');
    if (element === null || element === undefined || context === null || context === undefined) return;
    const image = context.createImageData(256, 1);
    new Uint32Array(image.data.buffer).set(lut(map));
    context.putImageData(image, 0, 0);
    props.store.redraw(stream);
  }, [map, stream, props.store]);

  const fix = () => {
    const min = Number.parseFloat(minInput.current?.value ?? '');
    const max = Number.parseFloat(maxInput.current?.value ?? '');
    if (!Number.isFinite(min) || !Number.isFinite(max)) return;
    settings.current.min = min;
    settings.current.max = max;
    settings.current.auto = false;
    setAuto(false);
    props.store.redraw(stream);
  };
  const toggleAuto = (on: boolean) => {
    if (!on) {
      settings.current.min = state.current.min;
      settings.current.max = state.current.max;
    }
    settings.current.auto = on;
    setAuto(on);
    props.store.redraw(stream);
  };
  const hover = (event: MouseEvent) => {
    const element = canvas.current;
    const shown = stream.latest;
    if (element === null || readout.current === null || shown?.kind !== 'image') return;
    // The canvas is drawn `object-fit: contain`: find the image inside the element's box.
    const box = element.getBoundingClientRect();
    const scale = Math.min(box.width / shown.cols, box.height / shown.rows);
    const left = box.left + (box.width - shown.cols * scale) / 2;
    const top = box.top + (box.height - shown.rows * scale) / 2;
    const col = Math.floor((event.clientX - left) / scale);
    const row = Math.floor((event.clientY - top) / scale);
    if (row < 0 || col < 0 || row >= shown.rows || col >= shown.cols) {
      readout.current.textContent = '';
      return;
    }
    const at = (row * shown.cols + col) * shown.channels;
    const values: Numbers = Array.from({ length: shown.channels }, (_, channel) => shown.array[at + channel]!);
    readout.current.textContent = `row ${row}, col ${col}: ${Array.from(values, (value) => compact(value)).join(', ')}`;
  };

  return (
    <div class="image-plot">
      <div class="image-box">
        <canvas
          ref={canvas}
          class="image"
          onMouseMove={hover}
          onMouseLeave={() => {
            if (readout.current !== null) readout.current.textContent = '';
          }}
        />
      </div>
      <div class="image-controls">
        <select
          value={map}
          title="colour map"
          onChange={(event) => setMap((event.currentTarget as HTMLSelectElement).value as ColourMap)}
        >
          {colourMaps.map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
        <label title="the range follows each frame's smallest and largest value">
          <input type="checkbox" checked={auto} onChange={(event) => toggleAuto(event.currentTarget.checked)} /> auto
        </label>
        <input
          class="range-input"
          ref={minInput}
          type="number"
          step="any"
          title="lowest value (first colour)"
          onChange={fix}
        />
        <canvas class="colour-bar" ref={bar} width={256} height={1} />
        <input
          class="range-input"
          ref={maxInput}
          type="number"
          step="any"
          title="highest value (last colour)"
          onChange={fix}
        />
        <span class="readout dim cut" ref={readout} />
      </div>
    </div>
  );
}
