import { Controller, Get, Inject, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { join } from 'node:path';
import { Access, CONFIG, readWebAppIndex, secureWebApp, sendWebAppPage, sendWebAsset, oidcAppConfig, oidcAppPolicy } from '@clinical-ledger/platform';
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
  private readonly dir: string;
  private readonly index: string;
  /** Strict, plus the OIDC provider's origin when sign-in goes there (discovery and the token request). */
  readonly policy: string;

  constructor(@Inject(CONFIG) private readonly config: ConsoleConfig) {
    this.dir = config.AUDIT_CONSOLE_DIR ?? join(__dirname, '..', '..', 'console');
    this.index = readWebAppIndex(this.dir, 'audit console');
    this.policy = oidcAppPolicy(config.AUDIT_CONSOLE_OIDC_ISSUER);
  }

  /** How to sign in (public: the provider and the client id are not secrets). */
  @Get('config.json')
  appConfig(@Res() res: Response): void {
    secureWebApp(res, this.policy);
    res.setHeader('Cache-Control', 'no-store');
    const c = this.config;
    res.json(
      oidcAppConfig({ issuer: c.AUDIT_CONSOLE_OIDC_ISSUER, clientId: c.AUDIT_CONSOLE_OIDC_CLIENT_ID, scope: c.AUDIT_CONSOLE_OIDC_SCOPE, audience: c.AUDIT_CONSOLE_OIDC_AUDIENCE }),
    );
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Res() res: Response): void {
    sendWebAsset(this.dir, file, res, this.policy);
  }

  @Get(CONSOLE_VIEWS)
  page(@Res() res: Response): void {
    sendWebAppPage(this.index, res, this.policy);
  }
}
