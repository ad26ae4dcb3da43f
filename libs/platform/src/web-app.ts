import { NotFoundException } from '@nestjs/common';
import type { Response } from 'express';
import { existsSync, readFileSync } from 'node:fs';
import { join, normalize } from 'node:path';

/**
 * Serving a browser app that Vite built (the patient app, the staff console): one strict policy,
 * hashed assets, index.html for every app route. Vite emits external files only, so no hashes or
 * nonces are needed: scripts, styles and requests to this origin, nothing inline, no frames.
 */
export function webAppPolicy(connectSources: string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `connect-src ${["'self'", ...connectSources].join(' ')}`,
    "img-src 'self' data:",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export const WEB_APP_POLICY = webAppPolicy();

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json', '.woff2': 'font/woff2' };

/** The headers every answer of a web app carries. */
export function secureWebApp(res: Response, policy = WEB_APP_POLICY): void {
  res.setHeader('Content-Security-Policy', policy);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

/** The built app's index.html; a shell without its app is a build mistake, said at start rather than with a blank page. */
export function readWebAppIndex(dir: string, app: string): string {
  const file = join(dir, 'index.html');
  if (!existsSync(file)) throw new Error(`${app}: no built app at ${file} (run npm run build)`);
  return readFileSync(file, 'utf8');
}

/** Sends `<dir>/assets/<file>` (404 for anything else); Vite names assets by content hash, so they are immutable. */
export function sendWebAsset(dir: string, file: string, res: Response, policy = WEB_APP_POLICY): void {
  const ext = /\.[a-z0-9]+$/.exec(file)?.[0] ?? '';
  const path = normalize(join(dir, 'assets', file));
  if (!/^[A-Za-z0-9._-]+$/.test(file) || !TYPES[ext] || !path.startsWith(join(dir, 'assets')) || !existsSync(path)) throw new NotFoundException();
  secureWebApp(res, policy);
  res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
  res.type(TYPES[ext] as string).send(readFileSync(path));
}

/** Sends the app's page for one of its routes (never cached: it names the current assets). */
export function sendWebAppPage(index: string, res: Response, policy = WEB_APP_POLICY): void {
  secureWebApp(res, policy);
  res.setHeader('Cache-Control', 'no-store');
  res.type('html').send(index);
}
