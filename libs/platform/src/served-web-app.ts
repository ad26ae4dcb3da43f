import { Controller, Get, Inject, Param, Res, type Type } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Access } from './access/http';
import type { Action } from './access/table';
import { oidcAppPolicy } from './oidc-config';
import { CONFIG } from './tokens';
import { readWebAppIndex, secureWebApp, sendWebAppPage, sendWebAsset } from './web-app';

/**
 * One built browser app as its Nest shell serves it (the staff console, the patient app): its page
 * for every client-side route, its hashed assets and its public `config.json`, all under the
 * web-app policy, which admits the OIDC provider's origin for connections when sign-in goes there.
 */
export class ServedWebApp {
  readonly policy: string;
  private readonly index: string;

  /** Reads the built page at once: a missing build stops the service at start, naming `app`. */
  constructor(
    private readonly dir: string,
    app: string,
    oidcIssuer: string | undefined,
  ) {
    this.index = readWebAppIndex(dir, app);
    this.policy = oidcAppPolicy(oidcIssuer);
  }

  /** Public settings the app reads at start (never cached: they change with the configuration). */
  sendConfig(res: Response, body: object): void {
    secureWebApp(res, this.policy);
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  }

  sendAsset(file: string, res: Response): void {
    sendWebAsset(this.dir, file, res, this.policy);
  }

  sendPage(res: Response): void {
    sendWebAppPage(this.index, res, this.policy);
  }
}

/** What a service says about the browser app it serves; read from its configuration at start. */
export interface WebAppShellOptions<C> {
  /** The mount path ('' for the root). */
  path: string;
  /** The access table's action for the app's routes (public ones: the page holds no data). */
  access: Action;
  /** The app's client-side routes: each serves the page. */
  views: string[];
  /** The built app's folder, its name in errors, and the OIDC provider sign-in goes to. */
  app(config: C): { dir: string; name: string; oidcIssuer?: string };
  /** The public `config.json` the app reads at start. */
  publicConfig(config: C): object;
}

/**
 * The Nest controller of one served app: `config.json`, hashed assets and the page for every view
 * (`export class ConsoleController extends WebAppShell<ConsoleConfig>({ ... }) {}`).
 */
export function WebAppShell<C>(o: WebAppShellOptions<C>): Type<object> {
  @ApiExcludeController()
  @Access(o.access)
  @Controller(o.path)
  class WebAppShellController {
    private readonly app: ServedWebApp;

    constructor(@Inject(CONFIG) private readonly config: C) {
      const a = o.app(config);
      this.app = new ServedWebApp(a.dir, a.name, a.oidcIssuer);
    }

    @Get('config.json')
    appConfig(@Res() res: Response): void {
      this.app.sendConfig(res, o.publicConfig(this.config));
    }

    @Get('assets/:file')
    asset(@Param('file') file: string, @Res() res: Response): void {
      this.app.sendAsset(file, res);
    }

    @Get(o.views)
    page(@Res() res: Response): void {
      this.app.sendPage(res);
    }
  }
  return WebAppShellController;
}
