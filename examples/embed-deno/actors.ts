import { Actor } from '@improv/core';

/** A first-order system: on each control input u, x ← a·x + u, and it reports the new x. */
export class Plant extends Actor<{ a: number }> {
  private x = 0;
  private started = false;

  override async runStep(): Promise<void> {
    if (!this.started) {
      // Close the loop: the first measurement starts the controller.
      this.started = true;
      await this.q_out.put(this.x);
      return;
    }
    const u = (await this.q_in.get()) as number;
    this.x = this.options.a * this.x + u;
    await this.q_out.put(this.x);
  }
}

/** An integral controller that drives the plant to `target`, and reports when it has settled. */
export class Controller extends Actor<{ target: number; gain: number; tolerance: number }> {
  private u = 0;
  private steps = 0;
  private settled = false;

  override async runStep(): Promise<void> {
    const y = (await this.q_in.get()) as number;
    this.steps += 1;
    const error = this.options.target - y;
    if (!this.settled && Math.abs(error) < this.options.tolerance) {
      this.settled = true;
      this.log.info(`RESULT ${JSON.stringify({ steps: this.steps, y })}`);
    }
    this.u += this.options.gain * error;
    await this.q_out.put(this.u);
  }
}
