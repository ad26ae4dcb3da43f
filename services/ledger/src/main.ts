import { loadConfig, runService } from '@clinical-ledger/platform';
import { ledgerService } from './bootstrap';
import { LedgerConfig } from './config';

runService(() => ledgerService(loadConfig(LedgerConfig)));
