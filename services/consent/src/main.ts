import { loadConfig, runService } from '@clinical-ledger/platform';
import { consentService } from './bootstrap';
import { ConsentConfig } from './config';

runService(() => consentService(loadConfig(ConsentConfig)));
