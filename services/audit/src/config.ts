import { BaseConfig } from '@clinical-ledger/platform';

export class AuditConfig extends BaseConfig {
  override SERVICE_NAME = 'audit';
}
