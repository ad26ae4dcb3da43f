import { loadConfig, runService } from '@clinical-ledger/platform';
import { AuditAppModule } from './app.module';
import { AuditConfig } from './config';

runService(() => {
  const config = loadConfig(AuditConfig);
  return { module: AuditAppModule.forRoot(config), config, openapiTitle: 'clinical-ledger audit' };
});
