/**
 * What both sides of a local link share (package-private): the endpoint, the run's control word,
 * the spin budget, the hooks, and the closed and held states.
 * @module
 */
import type { Endpoint, LinkClosedError, LinkHooks } from '@improv/core';
import { closedLinkError, endpointLabel } from '@improv/core';
import { CONTROL_CLOSED } from './_layout.ts';

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
  /** Set by `hold()` until `release()`: called whenever a call waits because of the hold. */
  protected onHeld: (() => void) | undefined;
  protected readonly hooks: LinkHooks;
  /** Set by this side's own `close()`. */
  protected closedHere = false;

  constructor(descriptor: SideDescriptor, hooks: LinkHooks) {
    this.hooks = hooks;
    this.endpoint = descriptor.endpoint;
    this.name = descriptor.endpoint.link;
    this.label = endpointLabel(descriptor.endpoint);
    this.control = new Int32Array(descriptor.control);
    this.spin = descriptor.spin;
  }

  /** True while held (between `hold()` and `release()`). */
  protected get held(): boolean {
    return this.onHeld !== undefined;
  }

  /** Closed by this side, or by the end of the run. */
  protected isClosed(): boolean {
    return this.closedHere || Atomics.load(this.control, CONTROL_CLOSED) !== 0;
  }

  protected closedError(): LinkClosedError {
    return closedLinkError(this.label, this.closedHere);
  }
}
