import { Controller, Get, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Access } from '@clinical-ledger/platform';

/** Content-Security-Policy that allows exactly the page's own inline script and style (by hash). */
export function pagePolicy(html: string): string {
  const hashes = (tag: string) =>
    [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => `'sha256-${createHash('sha256').update(m[1] ?? '').digest('base64')}'`).join(' ');
  return [
    "default-src 'none'",
    `script-src ${hashes('script') || "'none'"}`,
    `style-src ${hashes('style') || "'none'"}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The dashboard page: one static file (assets/dashboard.html, copied to dist by the build). It is
 * public; everything it shows comes from the token-protected API, with the token the user pastes
 * (kept in sessionStorage, sent as a bearer header, never in a URL).
 */
@ApiExcludeController()
@Access('audit.dashboard')
@Controller()
export class DashboardController {
  private readonly html = readFileSync(join(__dirname, '..', 'assets', 'dashboard.html'), 'utf8');
  private readonly policy = pagePolicy(this.html);

  @Get()
  page(@Res() res: Response): void {
    res.setHeader('Content-Security-Policy', this.policy);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(this.html);
  }
}
