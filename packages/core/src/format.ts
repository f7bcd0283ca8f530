/**
 * Text for people, shared by every front end (the terminal UI, `improv list`, `improv store`, the web
 * dashboard) and by the store drivers' messages: no imports, so a browser bundle can take it
 * (`@improv/core/format`).
 * @module
 */

/**
 * A size in binary units, the same in every message and view (and as the Python drivers write it):
 * `512 B`, `1.95 KiB`, `4.00 MiB`, `16.00 GiB`.
 */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index++;
  }
  // Whole bytes: a rate (bytes per second) may have a fraction.
  return index === 0 ? `${Math.round(bytes)} B` : `${value.toFixed(2)} ${units[index]}`;
}

/** Time since a start: `0:45`, `12:34`, `1:02:03`, `2d 03:04:05`. */
export function formatUptime(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const seconds = total % 60;
  const minutes = Math.floor(total / 60) % 60;
  const hours = Math.floor(total / 3600) % 24;
  const days = Math.floor(total / 86_400);
  const two = (n: number) => String(n).padStart(2, '0');
  if (days > 0) return `${days}d ${two(hours)}:${two(minutes)}:${two(seconds)}`;
  if (hours > 0) return `${hours}:${two(minutes)}:${two(seconds)}`;
  return `${minutes}:${two(seconds)}`;
}
