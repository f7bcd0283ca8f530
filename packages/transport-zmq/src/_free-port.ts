/**
 * A TCP port nobody listens on at an address now (package-private): for a link's sink, which binds
 * it moments later, here or (through its agent) on another host. And whether a bind address is one
 * of this machine's, checked before anything listens.
 * @module
 */
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';

/** A TCP port nobody listens on at `host` now (the sink binds it moments later). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      const failure = new Error(
        error.code === 'EADDRNOTAVAIL'
          ? `zmq transport: cannot listen on ${host} (the bind address): EADDRNOTAVAIL, it is not an address of this machine; bind one of its addresses, 127.0.0.1 (this machine only) or * (every interface)`
          : `zmq transport: cannot listen on ${host}: ${error.code ?? error.message}; is it an address of this machine?`,
      );
      // The code tells the caller it is the address, not the program: Nexus reports it at the setting.
      if (error.code !== undefined) (failure as NodeJS.ErrnoException).code = error.code;
      reject(failure);
    });
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Why this machine cannot listen on `bind`, or `undefined` when it can (or cannot tell): an IP
 * address that none of its network interfaces has. Every interface (`0.0.0.0`, `::`) and loopback
 * (`127.x`, `::1`, `localhost`) always can.
 */
export function foreignBindProblem(bind: string): string | undefined {
  const wanted = canonical(bind);
  if (
    wanted === undefined ||
    wanted === '0.0.0.0' ||
    wanted === '::' ||
    wanted === '::1' ||
    wanted.startsWith('127.')
  ) {
    return undefined;
  }
  let own: string[];
  try {
    own = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address));
  } catch {
    // Deno without --allow-sys may not list them: listening says it then, at the same setting.
    return undefined;
  }
  const addresses = own.map(canonical).filter((address) => address !== undefined);
  if (addresses.includes(wanted)) return undefined;
  const shown = addresses.filter((address) => !address.startsWith('fe80:')).slice(0, 6);
  return `zmq transport: bind ${bind} is not an address of this machine, so its links cannot listen there (this machine has ${shown.join(', ')}); bind one of those, 127.0.0.1 (this machine only) or * (every interface)`;
}

/** An IP address in one spelling (IPv6 compressed and lower case, without brackets or a zone); `undefined` for a name. */
function canonical(address: string): string | undefined {
  const bare = address
    .trim()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/%.*$/, '');
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(bare)) return bare.split('.').map(Number).join('.');
  if (!bare.includes(':')) return undefined;
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}
