/**
 * Permissions: telling "not allowed" apart from "not there", and, under Deno, which of the
 * permissions a command needs were not granted — so a user reads "run again with --allow-read"
 * instead of "module not found" for a file that exists.
 *
 * @example
 * ```ts
 * const missing = missingDenoPermissions(['read', 'env']);
 * if (missing.length > 0) console.error(`grant ${missing.map((name) => `--allow-${name}`).join(' ')}`);
 * ```
 * @module
 */

/** Deno's permission names that improv's commands use. */
export type DenoPermissionName = 'read' | 'write' | 'env' | 'sys' | 'net' | 'run' | 'ffi';

interface DenoPermissions {
  permissions: { querySync(descriptor: { name: string }): { state: string } };
}

/**
 * The permissions of `names` that Deno has not granted outright (granted for some paths or
 * variables only, denied, or left to a prompt). Empty outside Deno, where nothing is restricted.
 */
export function missingDenoPermissions(names: readonly DenoPermissionName[]): DenoPermissionName[] {
  const deno = (globalThis as { Deno?: DenoPermissions }).Deno;
  if (deno === undefined) return [];
  return names.filter((name) => deno.permissions.querySync({ name }).state !== 'granted');
}

/**
 * How to get past a failed file access, when it was refused rather than missing: Deno without the
 * permission (`NotCapable`, or `PermissionDenied` before Deno 2), or the operating system (`EACCES`,
 * `EPERM`). Undefined for any other error.
 */
export function permissionFix(error: unknown, path: string): string | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'NotCapable' || name === 'PermissionDenied') {
    const message = error instanceof Error ? error.message : '';
    const flag = /--allow-[a-z]+/.exec(message)?.[0] ?? '--allow-read';
    return `Deno was not given the permission: run it with ${flag} (or -A), e.g. deno run -A …`;
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'EACCES' || code === 'EPERM') {
    return `this user may not read ${path} or a folder above it: check its permissions (ls -l)`;
  }
  return undefined;
}
