import { join } from 'node:path';
import { oidcAppConfig, WebAppShell } from '@clinical-ledger/platform';
import { ConsoleConfig } from './console.config';

/** The console's routes (client-side views); each serves the same page. */
export const CONSOLE_VIEWS = ['', 'alerts', 'patients', 'actors', 'verify', 'live', 'callback'];

/**
 * The staff console (services/audit/web, built by Vite into dist/services/audit/console), under
 * /console/. The page is public; everything it shows comes from the token-protected API. Its
 * `config.json` says how to sign in (the provider and the client id are not secrets).
 */
export class ConsoleController extends WebAppShell<ConsoleConfig>({
  path: 'console',
  access: 'audit.dashboard',
  views: CONSOLE_VIEWS,
  app: (c) => ({ dir: c.AUDIT_CONSOLE_DIR ?? join(__dirname, '..', '..', 'console'), name: 'audit console', oidcIssuer: c.AUDIT_CONSOLE_OIDC_ISSUER }),
  publicConfig: (c) => oidcAppConfig({ issuer: c.AUDIT_CONSOLE_OIDC_ISSUER, clientId: c.AUDIT_CONSOLE_OIDC_CLIENT_ID, scope: c.AUDIT_CONSOLE_OIDC_SCOPE, audience: c.AUDIT_CONSOLE_OIDC_AUDIENCE }),
}) {}
