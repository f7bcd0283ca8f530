/**
 * A failure to open something a setting configures (a store, a transport), turned into a config
 * error that points at the setting to fix (package-private).
 * @module
 */
import { ConfigError, type SettingOrigin } from './types.ts';

/** `error` as a diagnostic at `origin`, when the setting is written in the config; else unchanged. */
export function settingError(error: unknown, origin: SettingOrigin | undefined): unknown {
  if (origin === undefined || !(error instanceof Error)) return error;
  const message = error.message;
  const diagnostic = { severity: 'error' as const, message, ...origin, path: origin.path };
  const where =
    origin.file === undefined
      ? ''
      : `${origin.file}${origin.line === undefined ? '' : `:${origin.line}:${origin.column}`}: `;
  const wrapped = new ConfigError(`${where}${message}`, [diagnostic]);
  (wrapped as { cause?: unknown }).cause = error;
  return wrapped;
}
