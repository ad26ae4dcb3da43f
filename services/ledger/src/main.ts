import { loadConfig, runService } from '@clinical-ledger/platform';
import { LedgerAppModule } from './app.module';
import { LedgerConfig } from './config';

runService(() => {
  const config = loadConfig(LedgerConfig);
  return { module: LedgerAppModule.forRoot(config), config, openapiTitle: 'clinical-ledger ledger' };
});
