import { BaseConfig } from '@clinical-ledger/platform';

export class ConsentConfig extends BaseConfig {
  override SERVICE_NAME = 'consent';
}
