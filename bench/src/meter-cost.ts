/**
 * What an actor host's own measuring costs per message, timed where it runs: the calls the host's
 * step loop makes around every step (`stepStarts`/`stepEnded`) and an input link's reads (through
 * the meter's wrapper), on the real `ActorMeter` of `@improv/core` (a package-private module, read
 * here by path: the bench measures internals on purpose), with measuring on and off in one thread.
 *
 * A pipeline's throughput on this 2-core machine swings 20–40% from run to run, more than the cost
 * it is asked to show (a few percent at most); timing the code itself in a tight loop, alternating
 * on and off many times, gives that cost to a few nanoseconds. The pair's source makes a step per
 * message, its sink a step and a read; `perMessageNs` adds the three (the two run on two cores at
 * once, so this is the most it can cost).
 * @module
 */
import type { GetOptions, InputLink } from '@improv/core';
import { ActorMeter } from '../../packages/core/src/worker/_meter.ts';
import { median } from './stats.ts';

/** ns per call, medians over the rounds. */
export interface MeterCost {
  /** A step of the source: `stepStarts()` + `stepEnded()`. */
  stepNs: { on: number; off: number };
  /** A step of the sink that reads a message: the step's calls + one `tryGet()` through the meter's wrapper. */
  readingStepNs: { on: number; off: number };
  /**
   * What measuring adds per message of a pair: (on − off) of a source step plus (on − off) of a
   * reading sink step. Signed: the medians of on and off differ by ±0.5 ns or so from round to round,
   * so a figure within about 1 ns of zero (negative ones too) says the cost is below what this resolves.
   */
  perMessageNs: number;
  rounds: number;
  stepsPerRound: number;
}

/** How often the host reports (and the meter starts a new window), as in the host. */
const REPORT_EVERY_MS = 500;

export function measureMeterCost(options: { rounds: number; stepsPerRound: number }): MeterCost {
  const { rounds, stepsPerRound } = options;
  const modes = [true, false].map((on) => {
    const meter = new ActorMeter(() => {});
    meter.start(on ? { ownProcess: false } : undefined);
    // The message of an 8 B inline row: a send time, a counter and the payload.
    const message = { t: Date.now(), n: 0, payload: new Uint8Array(8) };
    const link = meter.wrap(constantInput(message)) as InputLink;
    return { on, meter: new Metered(meter), link, step: [] as number[], reading: [] as number[] };
  });
  // Warm: the JIT sees both modes before anything is timed.
  for (const mode of modes) {
    loop(mode.meter, undefined, stepsPerRound / 4);
    loop(mode.meter, mode.link, stepsPerRound / 4);
  }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? modes : [...modes].reverse();
    for (const mode of order) {
      mode.step.push(loop(mode.meter, undefined, stepsPerRound));
      mode.reading.push(loop(mode.meter, mode.link, stepsPerRound));
    }
  }
  const [on, off] = modes as [(typeof modes)[0], (typeof modes)[0]];
  const stepNs = { on: median(on.step), off: median(off.step) };
  const readingStepNs = { on: median(on.reading), off: median(off.reading) };
  return {
    stepNs,
    readingStepNs,
    perMessageNs: stepNs.on - stepNs.off + (readingStepNs.on - readingStepNs.off),
    rounds,
    stepsPerRound,
  };
}

/** A meter and when it last reported: its windows (and so its sampling strides) run on across loops, as in a host. */
class Metered {
  readonly meter: ActorMeter;
  lastReport = performance.now();
  steps = 0;

  constructor(meter: ActorMeter) {
    this.meter = meter;
  }
}

/** ns per step of `steps` steps, each with a read from `link` when there is one; reports as the host does. */
function loop(metered: Metered, link: InputLink | undefined, steps: number): number {
  const { meter } = metered;
  const started = performance.now();
  let read = 0;
  for (let i = 0; i < steps; i++) {
    const stepStarted = meter.stepStarts();
    if (link !== undefined && link.tryGet() !== undefined) read += 1;
    meter.stepEnded(stepStarted);
    if ((i & 4095) === 0) {
      const now = performance.now();
      if (now - metered.lastReport >= REPORT_EVERY_MS) {
        metered.steps += i;
        meter.report(metered.steps, 0, false);
        metered.lastReport = now;
      }
    }
  }
  const ns = ((performance.now() - started) * 1e6) / steps;
  if (link !== undefined && read !== steps) throw new Error(`meter cost: read ${read} of ${steps} messages`);
  return ns;
}

/** An input link that always has `message`. */
function constantInput(message: unknown): InputLink {
  return {
    direction: 'in',
    name: 'q_in',
    get: (_options?: GetOptions) => Promise.resolve(message),
    tryGet: () => message,
    size: () => 1,
    hold() {},
    release() {},
    close() {},
  };
}
