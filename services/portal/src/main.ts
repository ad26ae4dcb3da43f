import { loadConfig, runService } from '@clinical-ledger/platform';
import { PortalAppModule } from './app.module';
import { PortalConfig } from './config';

runService(() => {
  const config = loadConfig(PortalConfig);
  // Bodies are forwarded as they came (FHIR JSON to consent), so Nest's parsers stay off.
  return { module: PortalAppModule.forRoot(config), config, bodyParser: false };
});
