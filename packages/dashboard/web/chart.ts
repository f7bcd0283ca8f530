/**
 * uPlot on the page: the dark theme's axes, a palette for series, and a hook that makes a chart in
 * a box, sizes it to the box as the box changes, and destroys it with the component.
 * @module
 */
import type { RefObject } from 'preact';
import { useLayoutEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { exponent } from './format.ts';

/** Tableau 10, lightened: distinct on a dark background, in the order series come. */
const brighter = [
  '#6f9fd8',
  '#ffa54f',
  '#ff7b7d',
  '#8fd6d0',
  '#74c26a',
  '#f5d96a',
  '#cf97c1',
  '#ffb8c0',
  '#c29878',
  '#d4ccc8',
];

export function colourFor(index: number): string {
  return brighter[index % brighter.length]!;
}

const axisColour = '#8b949e';
const gridColour = 'rgba(240, 246, 252, 0.07)';
const font = '11px ui-sans-serif, system-ui, sans-serif';

/** A themed axis; `values` formats the tick labels. */
export function axis(options: Partial<uPlot.Axis> = {}): uPlot.Axis {
  return {
    stroke: axisColour,
    font,
    size: 36,
    gap: 3,
    grid: { stroke: gridColour, width: 1 },
    ticks: { stroke: gridColour, width: 1, size: 3 },
    ...options,
  };
}

/** Tick labels of a value axis: short numbers (12.4k; 1.2e15 past the billions, 1e-7 below a millionth). */
export function shortValues(_chart: uPlot, ticks: number[]): string[] {
  return ticks.map((tick) => {
    const magnitude = Math.abs(tick);
    if (magnitude >= 1e12) return exponent(+tick.toPrecision(4));
    if (magnitude >= 1e9) return `${+(tick / 1e9).toFixed(2)}G`;
    if (magnitude >= 1e6) return `${+(tick / 1e6).toFixed(2)}M`;
    if (magnitude >= 1e4) return `${+(tick / 1e3).toFixed(1)}k`;
    return String(+tick.toPrecision(4));
  });
}

/** Tick labels of a time axis (seconds since the epoch): the local time of day, `17:58:05`. */
export function clockValues(_chart: uPlot, ticks: number[]): string[] {
  return ticks.map((tick) => {
    const date = new Date(tick * 1000);
    const two = (n: number) => String(n).padStart(2, '0');
    return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  });
}

/** Sizes `chart` to `box` (its legend, when shown, takes its share of the height). */
export function fit(chart: uPlot, box: HTMLElement): void {
  const legend = chart.root.querySelector<HTMLElement>('.u-legend');
  const width = Math.floor(box.clientWidth);
  const height = Math.floor(box.clientHeight - (legend?.offsetHeight ?? 0));
  if (width > 0 && height > 0 && (width !== chart.width || height !== chart.height)) {
    chart.setSize({ width, height: Math.max(30, height) });
  }
}

/**
 * Makes a chart with `create(box, width, height)` when the component mounts (and again when `deps`
 * change), keeps it the size of the box, and destroys it on unmount.
 */
export function useChart(
  create: (box: HTMLElement, width: number, height: number) => uPlot,
  deps: unknown[],
): [RefObject<HTMLDivElement | null>, RefObject<uPlot | undefined>] {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | undefined>(undefined);
  useLayoutEffect(() => {
    const element = box.current;
    if (element === null) return;
    const made = create(element, Math.max(50, element.clientWidth), Math.max(30, element.clientHeight));
    chart.current = made;
    fit(made, element);
    const observer = new ResizeObserver(() => fit(made, element));
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.current = undefined;
      made.destroy();
    };
  }, deps);
  return [box, chart];
}

export { uPlot };
