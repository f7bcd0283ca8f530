/**
 * Waiting until a condition on changing state holds (package-private): the owner calls
 * {@link Conditions.changed} whenever the state may have changed, and every waiter re-checks.
 * @module
 */

export class Conditions {
  readonly #waiters = new Set<() => void>();

  /** Re-checks every pending {@link until}. */
  changed(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Resolves to true once `condition` holds, or to false when `timeoutMs` passes first. */
  until(condition: () => boolean, timeoutMs?: number): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (value: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(value);
      };
      const check = () => {
        if (condition()) finish(true);
      };
      if (timeoutMs !== undefined) timer = setTimeout(() => finish(condition()), timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }
}
