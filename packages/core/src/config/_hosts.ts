/**
 * `hosts:` — the machines that run `improv agent` — and the actors an actor's `host:` puts on them
 * (package-private). Each problem is a diagnostic at its node. With `hostsLocal` (the CLI's
 * `--hosts local`) every host is this machine: the entries are still checked, and the actors they
 * carry run in processes of their own here.
 * @module
 */
import { type ConfigPath, describeValue, isMapping, type Reporter, showValue } from './_report.ts';
import { didYouMean } from './_suggest.ts';
import { DEFAULT_AGENT_PORT, DEFAULT_AGENT_TOKEN_FILE, type HostConfig } from './types.ts';

const hostKeys = ['address', 'port', 'token_file'];
const example = 'hosts:\n    rig: { address: 10.0.0.2 }';

/** What `hosts:` says: the usable hosts, and the names of entries that have an error of their own. */
export interface HostsRead {
  hosts: HostConfig[];
  broken: Set<string>;
  written: boolean;
  /** Every name under `hosts:`, in file order. */
  names: string[];
}

/** Reads `hosts:`; a host's `token_file` stays as written (resolved against the config's folder later). */
export function readHosts(value: unknown, reporter: Reporter): HostsRead {
  const read: HostsRead = { hosts: [], broken: new Set(), written: value !== undefined && value !== null, names: [] };
  if (!read.written) return read;
  if (!isMapping(value)) {
    reporter.error(
      ['hosts'],
      `hosts must be a mapping of host names to their agents, not ${describeValue(value)}`,
      `write it as\n  ${example}`,
    );
    return read;
  }
  read.names = Object.keys(value);
  for (const [name, spec] of Object.entries(value as Record<string, unknown>)) {
    const path: ConfigPath = ['hosts', name];
    const before = reporter.diagnostics.length;
    if (!isMapping(spec)) {
      reporter.error(
        path,
        `host "${name}" must be a mapping with the address of its agent, not ${describeValue(spec)}`,
        `write it as  ${name}: { address: 10.0.0.2 }  (where \`improv agent --listen\` runs)`,
      );
      continue;
    }
    for (const key of Object.keys(spec)) {
      if (hostKeys.includes(key)) continue;
      reporter.error(
        [...path, key],
        `host "${name}": unknown key "${key}"`,
        `${didYouMean(key, hostKeys)}a host takes address (required), port (default ${DEFAULT_AGENT_PORT}) and token_file (default ${DEFAULT_AGENT_TOKEN_FILE})`,
        { part: 'key' },
      );
    }
    const address = spec.address;
    if (typeof address !== 'string' || address.trim() === '' || /\s|\//.test(address.trim())) {
      reporter.error(
        address === undefined ? path : [...path, 'address'],
        address === undefined
          ? `host "${name}" has no address`
          : `host "${name}": address must be a host name or IP address, not ${showValue(address)}`,
        `write  address: 10.0.0.2  (the address \`improv agent --listen\` listens on, on that machine)`,
        address === undefined ? { part: 'key' } : undefined,
      );
      continue;
    }
    // `10.0.0.2:7310` or `[::1]:7310`: the port belongs in its own key (it would be added again).
    const withPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(address.trim());
    if (withPort !== null) {
      reporter.error(
        [...path, 'address'],
        `host "${name}": address ${showValue(address)} has a port in it; the port is a key of its own`,
        `write  address: ${withPort[1]!.replace(/^\[|\]$/g, '')}  and  port: ${withPort[2]}`,
      );
      continue;
    }
    let port = DEFAULT_AGENT_PORT;
    if (spec.port !== undefined) {
      if (typeof spec.port === 'number' && Number.isInteger(spec.port) && spec.port >= 1 && spec.port <= 65_535) {
        port = spec.port;
      } else {
        reporter.error(
          [...path, 'port'],
          `host "${name}": port must be a whole number from 1 to 65535, not ${describeValue(spec.port)}`,
          `write e.g.  port: ${DEFAULT_AGENT_PORT}  (the port of \`improv agent --listen ${address.trim()}:${DEFAULT_AGENT_PORT}\`), or remove it for the default`,
        );
      }
    }
    let tokenFile = DEFAULT_AGENT_TOKEN_FILE;
    if (spec.token_file !== undefined) {
      if (typeof spec.token_file === 'string' && spec.token_file.trim() !== '') tokenFile = spec.token_file.trim();
      else {
        reporter.error(
          [...path, 'token_file'],
          `host "${name}": token_file must be a path, not ${describeValue(spec.token_file)}`,
          'write e.g.  token_file: rig.token  (a copy of the file `improv agent --token-file` made on that machine; relative to this config file)',
        );
      }
    }
    if (reporter.diagnostics.length === before) {
      const tokenFileOrigin =
        spec.token_file === undefined ? reporter.origin(path, 'key') : reporter.origin([...path, 'token_file']);
      read.hosts.push({ name, address: address.trim(), port, tokenFile, tokenFileOrigin });
    } else read.broken.add(name);
  }
  for (const name of Object.keys(value as Record<string, unknown>)) {
    if (!read.hosts.some((host) => host.name === name)) read.broken.add(name);
  }
  return read;
}

/**
 * Checks each actor's `host:` against `hosts:`, and drops it when every host is this machine
 * (`hostsLocal`): the actor keeps its process of its own.
 */
export function checkActorHosts(
  actors: readonly { name: string; process?: { host?: string } | undefined }[],
  { hosts, broken, written: hostsWritten, names: written }: HostsRead,
  reporter: Reporter,
  hostsLocal: boolean,
): void {
  const names = hosts.map((host) => host.name);
  for (const actor of actors) {
    const host = actor.process?.host;
    if (host === undefined) continue;
    if (hostsLocal) {
      delete actor.process!.host;
      continue;
    }
    if (names.includes(host)) continue;
    // Not placed anywhere else: the actor stays a process here, so no error follows from its host.
    delete actor.process!.host;
    // A host entry with an error of its own was reported already.
    if (broken.has(host)) continue;
    reporter.error(
      ['actors', actor.name, 'host'],
      hostsWritten
        ? `actor "${actor.name}": host "${host}" is not in hosts:`
        : `actor "${actor.name}": host: ${host} names a machine, but the config has no hosts: section`,
      hostsWritten
        ? `${didYouMean(host, written)}hosts: has ${written.length > 0 ? written.join(', ') : 'no entry'}; add  ${host}: { address: … }  under hosts:`
        : `add at the top level\n  hosts:\n    ${host}: { address: 10.0.0.2 }  (where \`improv agent\` runs), or run with --hosts local to put every host's actors on this machine`,
    );
  }
}
