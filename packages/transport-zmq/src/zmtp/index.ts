/**
 * The {@link SocketFactory} in TypeScript: ZMTP 3.1 (RFC 23) over `node:net` — TCP and unix
 * sockets — with the NULL and CURVE (RFC 26) security mechanisms, for every runtime (Node, Bun,
 * Deno); it is the only one on Bun, where zeromq.js aborts the process. It speaks to libzmq,
 * zeromq.js, pyzmq and any ZeroMQ binding like one of them.
 *
 * - ROUTER (`router.ts`): binds, many peers, `frames[0]` is the peer's routing id both ways.
 * - DEALER (`dealer.ts`): connects to one ROUTER, reconnects, queues while disconnected.
 * - One connection (`connection.ts`): greeting (`greeting.ts`), handshake (`curve.ts` for CURVE),
 *   frames read by `decoder.ts` and written in batches by `writer.ts`.
 *
 * Like the zeromq.js sockets, every socket lingers 0 (closing discards what was not written) and
 * `send` never throws: it queues in order.
 * @module
 */
import type { DealerOptions, DealerSocket, RouterOptions, RouterSocket, SocketFactory } from '../_socket.ts';
import { checkKey } from '../keys.ts';
import type { Limits } from './connection.ts';
import { ZmtpDealer } from './dealer.ts';
import { ZmtpRouter } from './router.ts';

/** The limits of every connection: libzmq's handshake interval, and a generous frame bound. */
const LIMITS: Limits = {
  handshakeTimeoutMs: 30_000,
  /** Links bound their messages well below this (8 MiB by default). */
  maxFrameBytes: 1024 * 1024 * 1024,
};

/** The sockets of ZMTP 3.1 in TypeScript (`name: 'zmtp'`). */
export function createZmtpSockets(): SocketFactory {
  return {
    name: 'zmtp',
    router(options: RouterOptions = {}): RouterSocket {
      const curve = options.curve;
      return new ZmtpRouter(
        curve === undefined
          ? undefined
          : {
              server: true,
              publicKey: checkKey(curve.publicKey, 'public key'),
              secretKey: checkKey(curve.secretKey, 'secret key'),
            },
        LIMITS,
      );
    },
    dealer(options: DealerOptions): DealerSocket {
      const curve = options.curve;
      return new ZmtpDealer(
        options.routingId,
        curve === undefined
          ? undefined
          : {
              server: false,
              publicKey: checkKey(curve.publicKey, 'public key'),
              secretKey: checkKey(curve.secretKey, 'secret key'),
              serverKey: checkKey(curve.serverKey, 'server key'),
            },
        LIMITS,
      );
    },
  };
}
