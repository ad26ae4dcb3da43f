import { loadConfig, runService } from '@clinical-ledger/platform';
import { auditService } from './bootstrap';
import { AuditConfig } from './config';
import { loadVerifierKeyring } from './monitor/verifier-keys';

runService(() => {
  const config = loadConfig(AuditConfig);
  return auditService(config, { keyring: loadVerifierKeyring(config) });
});
