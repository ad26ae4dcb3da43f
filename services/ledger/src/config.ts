import { BaseConfig } from '@clinical-ledger/platform';

export class LedgerConfig extends BaseConfig {
  override SERVICE_NAME = 'ledger';
}
