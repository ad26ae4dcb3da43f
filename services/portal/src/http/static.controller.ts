import { Controller, Get, Inject, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { join } from 'node:path';
import { Access, CONFIG, readWebAppIndex, secureWebApp, sendWebAppPage, sendWebAsset } from '@clinical-ledger/platform';
import { PortalConfig, splitKeys } from '../config';

/**
 * Serves the built app (index.html for every app route, hashed assets) and the pinned keys, under
 * libs/platform's web-app policy: scripts, styles and requests to this origin, nothing inline, no frames.
 */
@ApiExcludeController()
@Access('portal.app')
@Controller()
export class StaticController {
  private readonly dir: string;
  private readonly index: string;

  constructor(@Inject(CONFIG) private readonly config: PortalConfig) {
    this.dir = config.PORTAL_STATIC_DIR ?? join(__dirname, '..', '..', 'public');
    this.index = readWebAppIndex(this.dir, 'portal');
  }

  /** What the app pins: the hospital's checkpoint keys and the trusted witnesses (public data). */
  @Get('config.json')
  appConfig(@Res() res: Response): void {
    secureWebApp(res);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ hospitalKeys: splitKeys(this.config.PORTAL_HOSPITAL_KEYS), witnessKeys: splitKeys(this.config.PORTAL_WITNESS_KEYS) });
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Res() res: Response): void {
    sendWebAsset(this.dir, file, res);
  }

  @Get(['', 'records', 'records/:eventId', 'access', 'consents', 'signin'])
  page(@Res() res: Response): void {
    sendWebAppPage(this.index, res);
  }
}
