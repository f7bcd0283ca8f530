/**
 * The dashboard page on the control server (package-private): `GET /?token=…` serves the page
 * built in `@improv/dashboard` and sets a cookie (HttpOnly, SameSite=Strict, this run's only) that
 * lets the page load its scripts and styles; without the token or the cookie the page is refused.
 * The API keeps asking for the token itself (the page sends it), so the cookie can never command
 * the run. Every response forbids the page to run anything it did not come with (CSP).
 * @module
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { builtPage } from '@improv/dashboard';
import type { Context, Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { serveStatic } from 'hono/serve-static';

/** Scripts and styles from the page's own files only; connections to this server only. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** What the page routes need from the server. */
export interface PageOptions {
  /** Whether `given` is the run's token (constant time). */
  isToken(given: string): boolean;
  /** The run's id: the cookie's name is made from it, so runs on one host never share a cookie. */
  runId: string;
  /** Where the token is, for the refusal. */
  tokenFile: string;
}

/** The page's address for a run: its server's URL and token. */
export function dashboardAddress(url: string, token: string): string {
  return `${url}/?token=${encodeURIComponent(token)}`;
}

function secure(c: Context): void {
  c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  c.header('X-Content-Type-Options', 'nosniff');
  // The page's address holds the token until the page removes it: never send it on.
  c.header('Referrer-Policy', 'no-referrer');
  c.header('Cache-Control', 'no-store');
}

/** Adds `/` (the page) and its files; everything under the API prefix is left to the API's own routes. */
export function addPageRoutes(app: Hono, options: PageOptions): void {
  const cookie = `improv-${options.runId.replace(/[^\w-]/g, '_')}`;
  const refuse = (c: Context, status: 401 | 403, why: string) => {
    secure(c);
    return c.text(
      `improv dashboard: ${why}.\nOpen the address that \`improv run --dashboard\` printed, or run \`improv dashboard ${options.runId}\` to print it again (the token is in ${options.tokenFile}).\n`,
      status,
    );
  };
  const page = builtPage();
  const files = serveStatic({
    root: page.ok ? page.folder : '.',
    getContent: async (path) => {
      try {
        return await readFile(path);
      } catch {
        return null;
      }
    },
    join,
    isDir: async (path) => (await stat(path).catch(() => undefined))?.isDirectory(),
  });

  app.get('*', async (c, next) => {
    if (c.req.path.startsWith('/api/')) return next();
    const given = c.req.query('token');
    if (given !== undefined) {
      if (!options.isToken(given)) return refuse(c, 403, 'wrong token');
      setCookie(c, cookie, given, { httpOnly: true, sameSite: 'Strict', path: '/' });
    } else {
      const held = getCookie(c, cookie);
      if (held === undefined) return refuse(c, 401, 'a token is required');
      if (!options.isToken(held)) return refuse(c, 403, 'wrong token');
    }
    secure(c);
    if (!page.ok) return c.text(`improv dashboard: ${page.message}\n`, 503);
    return (await files(c, async () => {})) ?? c.text('not found\n', 404);
  });
}
