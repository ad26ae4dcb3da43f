import { loadConfig, runService } from '@clinical-ledger/platform';
import { IntakeAppModule } from './app.module';
import { IntakeConfig } from './config';

runService(() => {
  const config = loadConfig(IntakeConfig);
  // bodyParser off: intake reads FHIR/CloudEvents/HL7 bodies itself (http/body-reader.interceptor.ts, after the auth guard).
  return { module: IntakeAppModule.forRoot(config), config, openapiTitle: 'clinical-ledger intake', bodyParser: false };
});
