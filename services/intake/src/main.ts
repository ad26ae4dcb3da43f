import { loadConfig, runService } from '@clinical-ledger/platform';
import { IntakeAppModule } from './app.module';
import { IntakeConfig } from './config';

runService(() => {
  const config = loadConfig(IntakeConfig);
  return { module: IntakeAppModule.forRoot(config), config, openapiTitle: 'clinical-ledger intake' };
});
