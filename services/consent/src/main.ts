import { loadConfig, runService } from '@clinical-ledger/platform';
import { ConsentAppModule } from './app.module';
import { ConsentConfig } from './config';

runService(() => {
  const config = loadConfig(ConsentConfig);
  return { module: ConsentAppModule.forRoot(config), config, openapiTitle: 'clinical-ledger consent' };
});
