import { Actor } from '@improv/core';
import { pid, runtime, type SpotMessage } from './where.ts';

/** Shows the spot's position once a second, and at stop how many frames came and how many were lost. */
export class Viewer extends Actor {
  private received = 0;
  private first: number | undefined;
  private last: SpotMessage | undefined;
  private shown = 0;

  override setup(): void {
    this.log.info(`on ${runtime}, pid ${pid} (a worker of improv's own process)`);
  }

  override async runStep(): Promise<void> {
    const spot = await this.input<SpotMessage>('q_in').get();
    this.received += 1;
    this.first ??= spot.n;
    this.last = spot;
    if (Date.now() - this.shown >= 1000) {
      this.shown = Date.now();
      this.log.info(`frame ${spot.n}: spot at (${spot.x}, ${spot.y}), via ${spot.via.join(' → ')}`);
    }
  }

  override stop(): void {
    const span = this.last === undefined || this.first === undefined ? 0 : this.last.n - this.first + 1;
    this.log.info(
      `received ${this.received} frames of ${span} the camera sent in that time (${span - this.received} lost with the analysis when it crashed)`,
    );
  }
}
