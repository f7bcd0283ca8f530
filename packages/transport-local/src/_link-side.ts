/**
 * What both sides of a local link share (package-private): the endpoint, the run's control word,
 * the spin budget, and the closed and interrupted states with their errors.
 * @module
 */
import type { Endpoint, LinkClosedError } from '@improv/core';
import { CONTROL_CLOSED, closedLinkError, endpointLabel } from './_layout.ts';

/** The descriptor fields both sides are built from. */
interface SideDescriptor {
  endpoint: Endpoint;
  control: SharedArrayBuffer;
  spin: number;
}

export abstract class LinkSide {
  readonly endpoint: Endpoint;
  readonly name: string;
  /** `Actor.link`, for messages. */
  protected readonly label: string;
  /** Set when the transport closes the whole run (`Transport.close()`). */
  protected readonly control: Int32Array<SharedArrayBuffer>;
  /** Spin iterations before sleeping. */
  protected readonly spin: number;
  /** Set by `interrupt()` until `clearInterrupt()`: calls that would wait reject with it. */
  protected interruptReason: Error | undefined;
  /** Set by this side's own `close()`. */
  protected closedHere = false;

  constructor(descriptor: SideDescriptor) {
    this.endpoint = descriptor.endpoint;
    this.name = descriptor.endpoint.link;
    this.label = endpointLabel(descriptor.endpoint);
    this.control = new Int32Array(descriptor.control);
    this.spin = descriptor.spin;
  }

  clearInterrupt(): void {
    this.interruptReason = undefined;
  }

  /** Closed by this side, or by the end of the run. */
  protected isClosed(): boolean {
    return this.closedHere || Atomics.load(this.control, CONTROL_CLOSED) !== 0;
  }

  protected closedError(): LinkClosedError {
    return closedLinkError(this.label, this.closedHere);
  }
}
