/**
 * Rebuilds a link from its descriptor (package-private): imports the transport module the
 * descriptor names and calls its `openLink`. Used by the actor host in each worker and by Nexus for
 * the embedding program's own links.
 * @module
 */
import type { Link, LinkDescriptor, LinkHooks, OpenLink } from './transport.ts';

export async function openLink(descriptor: LinkDescriptor, hooks: LinkHooks): Promise<Link> {
  const module = (await import(/* @vite-ignore */ descriptor.module)) as { openLink?: OpenLink };
  if (typeof module.openLink !== 'function') {
    throw new TypeError(`transport module ${descriptor.module} does not export openLink()`);
  }
  return module.openLink(descriptor, hooks);
}
