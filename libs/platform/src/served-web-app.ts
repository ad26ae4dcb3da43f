import type { Response } from 'express';
import { oidcAppPolicy } from './oidc-config';
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
