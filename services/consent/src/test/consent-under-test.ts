import { createLogger, loadConfig, RunningService, startDefinition } from '@clinical-ledger/platform';
import { eventually, Infra, TestAuth } from '@clinical-ledger/testing';
import { consentService } from '../bootstrap';
import { ConsentConfig } from '../config';

/** The consent service in this process on the test's servers (loopback, any free port), once ready. */
export async function startConsentUnderTest(infra: Infra, auth: TestAuth, env: Record<string, string> = {}): Promise<RunningService> {
  const config = loadConfig(ConsentConfig, {
    NATS_URL: infra.natsUrl,
    NATS_NAMESPACE: infra.namespace,
    MONGO_URL: infra.mongoUrl,
    MONGO_DB: infra.dbName,
    HTTP_HOST: '127.0.0.1',
    ...auth.env,
    ...env,
  });
  const svc = await startDefinition(consentService(config), { port: 0, handleSignals: false, logger: createLogger('consent', 'silent') });
  await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 20_000, 'consent ready');
  return svc;
}
