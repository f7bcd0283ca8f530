/**
 * How many log lines one actor may send up (package-private): the actor host applies it to
 * `this.log` and the console, and Nexus to the lines an actor process writes to its stdout and
 * stderr itself. Log records travel the same channel as the control messages (state changes, the
 * end of `stop()`, quit), so an actor that logs in a tight loop would bury those under a backlog
 * Nexus takes minutes to work through. Past {@link LOG_LINES_PER_SECOND} (with as large a burst),
 * lines are dropped and counted, and one warning says how many, a second after the first of them
 * (so at most once a second) and when the actor ends.
 * @module
 */
import { createLogRecord, type LogRecord } from './log.ts';

/** Lines a second one actor may log, on average; it may log as many at once. */
export const LOG_LINES_PER_SECOND = 1000;
/** How soon after the first dropped line the count is reported when nothing else is logged. */
const REPORT_AFTER_MS = 1000;

export class LogBudget {
  readonly #actor: () => string;
  readonly #send: (record: LogRecord) => void;
  #tokens = LOG_LINES_PER_SECOND;
  #refilledAt = performance.now();
  #dropped = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `actor` names the actor (it may be known only later); `send` takes the warnings about dropped lines. */
  constructor(actor: () => string, send: (record: LogRecord) => void) {
    this.#actor = actor;
    this.#send = send;
  }

  /** Whether one more line may go now; when not, it is counted dropped. Cheap: call it before formatting the line. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(
      LOG_LINES_PER_SECOND,
      this.#tokens + ((now - this.#refilledAt) * LOG_LINES_PER_SECOND) / 1000,
    );
    this.#refilledAt = now;
    if (this.#tokens < 1) {
      this.#dropped += 1;
      if (this.#timer === undefined) {
        this.#timer = setTimeout(() => this.flush(), REPORT_AFTER_MS);
        (this.#timer as { unref?: () => void }).unref?.();
      }
      return false;
    }
    this.#tokens -= 1;
    return true;
  }

  /** Reports the lines dropped since the last report, if any (also when the actor ends). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dropped === 0) return;
    const count = this.#dropped;
    this.#dropped = 0;
    const actor = this.#actor();
    this.#send(
      createLogRecord(
        actor,
        'warn',
        `${count} log line${count === 1 ? '' : 's'} dropped: actor "${actor}" logged more than ${LOG_LINES_PER_SECOND} lines a second, and signals and states come first. Log a summary now and then instead of every step, or send numbers with this.publish()`,
        [],
      ),
    );
  }
}
