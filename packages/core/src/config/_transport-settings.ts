/**
 * The links' settings (package-private): `settings.transport` (what connections use unless they
 * name their own `transport:`) and `settings.zmq` (protocol, bind address, CURVE keys). Each problem
 * is a diagnostic at its node. Key files are read by whoever opens the zmq transport (the CLI), which
 * points back here through `origins`.
 * @module
 */
import { type ConfigPath, describeValue, isMapping, type Reporter, showValue } from './_report.ts';
import { checkKeys, oneOf } from './_store-settings.ts';
import type { TransportName, TransportSettings } from './types.ts';

export const transportNames = ['local', 'zmq'] as const satisfies readonly TransportName[];
/** The settings keys this module reads. */
export const transportSettingsKeys = ['transport', 'zmq'];

const zmqKeys = ['protocol', 'bind', 'keys'];
const protocols = ['ipc', 'tcp'] as const;

export function defaultTransportSettings(): TransportSettings {
  return { name: 'local', zmq: { protocol: 'ipc' }, origins: {} };
}

/** Reads the transport settings out of `settings` (a mapping). */
export function validateTransportSettings(settings: Record<string, unknown>, reporter: Reporter): TransportSettings {
  const result = defaultTransportSettings();
  if (settings.transport !== undefined) {
    result.origins.transport = reporter.origin(['settings', 'transport']);
    const name = oneOf(settings.transport, transportNames, ['settings', 'transport'], reporter, 'transport: zmq');
    if (name !== undefined) result.name = name;
  }
  if (settings.zmq !== undefined) {
    result.origins.zmq = reporter.origin(['settings', 'zmq']);
    readZmq(settings.zmq, result, reporter);
  }
  return result;
}

function readZmq(value: unknown, result: TransportSettings, reporter: Reporter): void {
  const path: ConfigPath = ['settings', 'zmq'];
  if (!isMapping(value)) {
    reporter.error(
      path,
      `settings: zmq must be a mapping, not ${describeValue(value)}`,
      'write e.g.  zmq: { protocol: tcp, bind: 127.0.0.1 }',
    );
    return;
  }
  checkKeys(value, zmqKeys, path, reporter);
  if (value.protocol !== undefined) {
    const protocol = oneOf(value.protocol, protocols, [...path, 'protocol'], reporter, 'protocol: tcp');
    if (protocol !== undefined) result.zmq.protocol = protocol;
  }
  if (value.bind !== undefined) {
    result.origins['zmq.bind'] = reporter.origin([...path, 'bind']);
    const problem = typeof value.bind === 'string' ? bindProblem(value.bind) : 'is not a string';
    if (problem === undefined) result.zmq.bind = (value.bind as string).trim();
    else {
      reporter.error(
        [...path, 'bind'],
        `settings: zmq.bind must be an IP address of this host, "localhost" or "*" (every interface); ${showValue(value.bind)} ${problem}`,
        'write e.g.  bind: 127.0.0.1  (this host only, the default) or  bind: 198.18.0.1  (one interface; needs keys)',
      );
    }
  }
  if (value.keys !== undefined) {
    result.origins['zmq.keys'] = reporter.origin([...path, 'keys']);
    if (typeof value.keys === 'string' && value.keys.trim() !== '') result.zmq.keys = value.keys.trim();
    else {
      reporter.error(
        [...path, 'keys'],
        `settings: zmq.keys must be the path of a key pair written by \`improv keys\`, not ${showValue(value.keys)}`,
        'write e.g.  keys: keys/pipeline  (reads keys/pipeline.key and keys/pipeline.key_secret, relative to this file)',
      );
    }
  }
  // A non-loopback bind without keys is refused where keys are looked up (IMPROV_ZMQ_KEYS counts too).
  if (result.zmq.bind !== undefined && !isLoopbackAddress(result.zmq.bind) && result.zmq.protocol !== 'tcp') {
    reporter.error(
      [...path, 'bind'],
      `settings: zmq.bind ${result.zmq.bind} applies to tcp links only, but zmq.protocol is ${result.zmq.protocol}`,
      'add  protocol: tcp  to settings.zmq, or remove bind',
    );
  }
}

/** Why `text` is not a bind address, or undefined when it is one. */
function bindProblem(text: string): string | undefined {
  const value = text.trim();
  if (value === '*' || value === 'localhost') return undefined;
  if (isIPv4(value) || isIPv6(value)) return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return 'is a whole address; give the host part only';
  if (/:\d+$/.test(value)) return 'has a port; ports are picked for each link';
  return 'is not an IP address';
}

function isIPv4(value: string): boolean {
  const parts = value.split('.');
  return parts.length === 4 && parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255);
}

function isIPv6(value: string): boolean {
  const inner = value.replace(/^\[(.*)\]$/, '$1');
  const groups = inner.split(':');
  const last = groups[groups.length - 1] ?? '';
  return (
    groups.length >= 3 &&
    groups.length <= 8 &&
    inner.split('::').length <= 2 &&
    groups.slice(0, -1).every((group) => /^[0-9a-f]{0,4}$/i.test(group)) &&
    (/^[0-9a-f]{0,4}$/i.test(last) || isIPv4(last))
  );
}

/** Whether a bind address keeps the listeners on this host only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackAddress(address: string): boolean {
  const value = address.trim().replace(/^\[(.*)\]$/, '$1');
  return value === 'localhost' || value === '::1' || (isIPv4(value) && value.startsWith('127.'));
}
