/**
 * A time-series panel's data (pure: no DOM, so tested under Node): the points of the last
 * {@link SERIES_WINDOW_S} seconds, a column per field, and how many values were not finite.
 * @module
 */

/** How long a series panel shows, in seconds, and at most how many points per field. */
export const SERIES_WINDOW_S = 30;
export const SERIES_MAX_POINTS = 20_000;

export interface SeriesData {
  /** Seconds since the epoch (uPlot's time unit), oldest first. */
  times: number[];
  /** Fields in the order they first came. */
  fields: string[];
  /** By field, one value per time; null where a point lacked the field or its value was not finite. */
  columns: Map<string, (number | null)[]>;
  /** By time, how many of the point's values were NaN or ±Infinity (not drawn; absent ones are not counted). */
  notFiniteAt: number[];
  /** The sum of {@link notFiniteAt}: values in the window that are not drawn. */
  notFinite: number;
}

/**
 * Appends points and keeps the window; true when a field is new. A value that is NaN or ±Infinity
 * is a gap (null) in its column and is counted in `notFiniteAt` and `notFinite`; a field a point
 * lacked (null, or absent from the delivery) is a gap and not counted.
 */
export function appendSeries(series: SeriesData, times: number[], values: Record<string, (number | null)[]>): boolean {
  let newField = false;
  const before = series.times.length;
  for (const field of Object.keys(values)) {
    if (series.columns.has(field)) continue;
    series.fields.push(field);
    series.columns.set(field, new Array<number | null>(before).fill(null));
    newField = true;
  }
  for (const time of times) {
    series.times.push(time / 1000);
    series.notFiniteAt.push(0);
  }
  for (const field of series.fields) {
    const column = series.columns.get(field)!;
    const incoming = values[field];
    for (let index = 0; index < times.length; index++) {
      const value = incoming?.[index];
      if (typeof value === 'number' && Number.isFinite(value)) column.push(value);
      else {
        column.push(null);
        if (typeof value === 'number') {
          series.notFiniteAt[before + index]! += 1;
          series.notFinite += 1;
        }
      }
    }
  }
  const newest = series.times.at(-1) ?? 0;
  let start = Math.max(0, series.times.length - SERIES_MAX_POINTS);
  while (start < series.times.length && series.times[start]! < newest - SERIES_WINDOW_S) start += 1;
  if (start > 0) {
    series.times.splice(0, start);
    for (const column of series.columns.values()) column.splice(0, start);
    for (const count of series.notFiniteAt.splice(0, start)) series.notFinite -= count;
  }
  return newField;
}
