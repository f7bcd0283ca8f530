/**
 * Formats `console.*` arguments the way the runtime's console does, over `node:util`, which Node,
 * Bun and Deno all implement (the same output on the three). Package-private: the actor host uses
 * it to route an actor's console into the pipeline log.
 *
 * @example
 * ```ts
 * formatLogArguments(['%d items', 3, new Map([[1, 2]]), NaN]); // '3 items Map(1) { 1 => 2 } NaN'
 * ```
 * @module
 */
import { formatWithOptions } from 'node:util';

/**
 * One log message from `console.log`-style arguments: format specifiers (`%s`, `%d`, `%i`, `%f`,
 * `%j`, `%o`, `%O`, `%c`, `%%`) in a leading string, then every other argument inspected (an
 * `Error` with its stack, a `Map` with its entries, a class instance with its class name).
 * Never coloured: the text goes into a log file as well as to a terminal.
 */
export function formatLogArguments(args: readonly unknown[]): string {
  return formatWithOptions({ colors: false }, ...args);
}
