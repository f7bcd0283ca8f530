import { Actor, type OptionTypes } from '@improv/core';
import { type FrameMessage, pid, runtime, type SpotMessage } from './where.ts';

/**
 * Finds the brightest pixel of each frame and sends its position. With `crash_every` (a duration
 * such as `6s`) it aborts its process that long after each start: the demo's fault, for restart:
 * on-failure to mend.
 */
export class Analysis extends Actor<{ crash_every?: string }> {
  static override optionTypes: OptionTypes = { crash_every: 'string' };
  private crashAt = Number.POSITIVE_INFINITY;

  override setup(): void {
    const every = this.options.crash_every;
    if (every !== undefined) {
      const match = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(every);
      if (!match) throw new Error(`crash_every must be a duration such as 6s or 500ms, not ${every}`);
      this.crashAt = Date.now() + Number(match[1]) * (match[2] === 's' ? 1000 : 1);
    }
    this.log.info(`on ${runtime}, pid ${pid}${every ? `; it will abort in ${every}, on purpose` : ''}`);
  }

  override async runStep(): Promise<void> {
    if (Date.now() >= this.crashAt) {
      this.log.warn('aborting now, on purpose (crash_every)');
      await new Promise((resolve) => setTimeout(resolve, 10));
      (globalThis as unknown as { process: { abort(): never } }).process.abort();
    }
    const message = await this.input<FrameMessage>('q_in').get();
    const frame = await this.store.get<Float32Array>(message.key);
    let best = 0;
    for (let i = 1; i < frame.length; i++) if (frame[i]! > frame[best]!) best = i;
    const size = Math.round(Math.sqrt(frame.length));
    await this.store.delete(message.key);
    const spot: SpotMessage = {
      n: message.n,
      x: best % size,
      y: Math.floor(best / size),
      via: [...message.via, `Analysis@${runtime}`],
    };
    await this.output<SpotMessage>('q_out').put(spot);
  }
}
