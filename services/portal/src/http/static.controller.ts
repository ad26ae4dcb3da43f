import { join } from 'node:path';
import { oidcAppConfig, WebAppShell } from '@clinical-ledger/platform';
import { PortalConfig, splitKeys } from '../config';

/**
 * Serves the built app (index.html for every app route, hashed assets) and, in `config.json`, what
 * it pins (the hospital's checkpoint keys, the trusted witnesses) and how to sign in: public data.
 * All under libs/platform's web-app policy: scripts, styles and requests to this origin (and the
 * OIDC provider's, for discovery and the token request, when sign-in goes there), nothing inline,
 * no frames.
 */
export class StaticController extends WebAppShell<PortalConfig>({
  path: '',
  access: 'portal.app',
  views: ['', 'records', 'records/:eventId', 'access', 'consents', 'signin', 'callback'],
  app: (c) => ({ dir: c.PORTAL_STATIC_DIR ?? join(__dirname, '..', '..', 'public'), name: 'portal', oidcIssuer: c.PORTAL_OIDC_ISSUER }),
  publicConfig: (c) => ({
    hospitalKeys: splitKeys(c.PORTAL_HOSPITAL_KEYS),
    witnessKeys: splitKeys(c.PORTAL_WITNESS_KEYS),
    ...oidcAppConfig({ issuer: c.PORTAL_OIDC_ISSUER, clientId: c.PORTAL_OIDC_CLIENT_ID, scope: c.PORTAL_OIDC_SCOPE }),
  }),
}) {}
