/**
 * Text for people, shared by every front end (the terminal UI, `improv list`, the web dashboard):
 * no imports, so a browser bundle can take it (`@improv/core/format`).
 * @module
 */

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
