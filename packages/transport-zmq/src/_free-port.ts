/**
 * A TCP port nobody listens on at an address now (package-private): for a link's sink, which binds
 * it moments later, here or (through its agent) on another host.
 * @module
 */
import { createServer } from 'node:net';

/** A TCP port nobody listens on at `host` now (the sink binds it moments later). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `zmq transport: cannot listen on ${host}: ${error.code ?? error.message}; is it an address of this machine?`,
        ),
      ),
    );
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
