import { Controller, Get, Inject, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { join } from 'node:path';
import { Access, CONFIG, oidcAppConfig, ServedWebApp } from '@clinical-ledger/platform';
import { ConsoleConfig } from './console.config';

/** The console's routes (client-side views); each serves the same page. */
export const CONSOLE_VIEWS = ['', 'alerts', 'patients', 'actors', 'verify', 'live', 'callback'];

/**
 * The staff console (services/audit/web, built by Vite into dist/services/audit/console), under
 * /console/. The page is public; everything it shows comes from the token-protected API.
 */
@ApiExcludeController()
@Access('audit.dashboard')
@Controller('console')
export class ConsoleController {
  private readonly app: ServedWebApp;

  constructor(@Inject(CONFIG) private readonly config: ConsoleConfig) {
    this.app = new ServedWebApp(config.AUDIT_CONSOLE_DIR ?? join(__dirname, '..', '..', 'console'), 'audit console', config.AUDIT_CONSOLE_OIDC_ISSUER);
  }

  /** How to sign in (public: the provider and the client id are not secrets). */
  @Get('config.json')
  appConfig(@Res() res: Response): void {
    const c = this.config;
    this.app.sendConfig(res, oidcAppConfig({ issuer: c.AUDIT_CONSOLE_OIDC_ISSUER, clientId: c.AUDIT_CONSOLE_OIDC_CLIENT_ID, scope: c.AUDIT_CONSOLE_OIDC_SCOPE, audience: c.AUDIT_CONSOLE_OIDC_AUDIENCE }));
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Res() res: Response): void {
    this.app.sendAsset(file, res);
  }

  @Get(CONSOLE_VIEWS)
  page(@Res() res: Response): void {
    this.app.sendPage(res);
  }
}
