import { BaseConfig } from '@clinical-ledger/platform';

export class IntakeConfig extends BaseConfig {
  override SERVICE_NAME = 'intake';
}
