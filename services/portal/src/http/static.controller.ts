import { Controller, Get, Inject, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { join } from 'node:path';
import { Access, CONFIG, oidcAppConfig, ServedWebApp } from '@clinical-ledger/platform';
import { PortalConfig, splitKeys } from '../config';

/**
 * Serves the built app (index.html for every app route, hashed assets) and the pinned keys, under
 * libs/platform's web-app policy: scripts, styles and requests to this origin (and the OIDC provider's,
 * for discovery and the token request, when sign-in goes there), nothing inline, no frames.
 */
@ApiExcludeController()
@Access('portal.app')
@Controller()
export class StaticController {
  private readonly app: ServedWebApp;

  constructor(@Inject(CONFIG) private readonly config: PortalConfig) {
    this.app = new ServedWebApp(config.PORTAL_STATIC_DIR ?? join(__dirname, '..', '..', 'public'), 'portal', config.PORTAL_OIDC_ISSUER);
  }

  /** What the app pins (the hospital's checkpoint keys, the trusted witnesses) and how to sign in: public data. */
  @Get('config.json')
  appConfig(@Res() res: Response): void {
    const c = this.config;
    this.app.sendConfig(res, {
      hospitalKeys: splitKeys(c.PORTAL_HOSPITAL_KEYS),
      witnessKeys: splitKeys(c.PORTAL_WITNESS_KEYS),
      ...oidcAppConfig({ issuer: c.PORTAL_OIDC_ISSUER, clientId: c.PORTAL_OIDC_CLIENT_ID, scope: c.PORTAL_OIDC_SCOPE }),
    });
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Res() res: Response): void {
    this.app.sendAsset(file, res);
  }

  @Get(['', 'records', 'records/:eventId', 'access', 'consents', 'signin', 'callback'])
  page(@Res() res: Response): void {
    this.app.sendPage(res);
  }
}
