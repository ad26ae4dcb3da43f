import { Controller, Get, Inject, NotFoundException, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { existsSync, readFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { Access, CONFIG } from '@clinical-ledger/platform';
import { PortalConfig, splitKeys } from '../config';

/**
 * The app's only policy: scripts, styles and requests to this origin, nothing inline, no frames.
 * Vite emits external files only, so no hashes or nonces are needed.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json', '.woff2': 'font/woff2' };

function secure(res: Response): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

/** Serves the built app (index.html for every app route, hashed assets) and the pinned keys. */
@ApiExcludeController()
@Access('portal.app')
@Controller()
export class StaticController {
  private readonly dir: string;
  private readonly index: string;

  constructor(@Inject(CONFIG) private readonly config: PortalConfig) {
    this.dir = config.PORTAL_STATIC_DIR ?? join(__dirname, '..', '..', 'public');
    const file = join(this.dir, 'index.html');
    // A shell without its app is a build mistake: say so at start, not with a blank page.
    if (!existsSync(file)) throw new Error(`portal: no built app at ${file} (run npm run build)`);
    this.index = readFileSync(file, 'utf8');
  }

  /** What the app pins: the hospital's checkpoint keys and the trusted witnesses (public data). */
  @Get('config.json')
  appConfig(@Res() res: Response): void {
    secure(res);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ hospitalKeys: splitKeys(this.config.PORTAL_HOSPITAL_KEYS), witnessKeys: splitKeys(this.config.PORTAL_WITNESS_KEYS) });
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Res() res: Response): void {
    const ext = /\.[a-z0-9]+$/.exec(file)?.[0] ?? '';
    const path = normalize(join(this.dir, 'assets', file));
    if (!/^[A-Za-z0-9._-]+$/.test(file) || !TYPES[ext] || !path.startsWith(join(this.dir, 'assets')) || !existsSync(path)) throw new NotFoundException();
    secure(res);
    // Vite names assets by content hash, so they never change under one name.
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    res.type(TYPES[ext]).send(readFileSync(path));
  }

  @Get(['', 'records', 'records/:eventId', 'access', 'consents', 'signin'])
  page(@Res() res: Response): void {
    secure(res);
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(this.index);
  }
}
