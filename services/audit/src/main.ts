import { loadConfig } from '@clinical-ledger/platform';
import { startAudit } from './bootstrap';
import { AuditConfig } from './config';
import { loadVerifierKeyring } from './monitor/verifier-keys';

let config: AuditConfig;
let keyring: ReturnType<typeof loadVerifierKeyring>;
try {
  config = loadConfig(AuditConfig);
  keyring = loadVerifierKeyring(config);
} catch (err) {
  // Names the variables to fix; EX_CONFIG.
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(78);
}
startAudit(config, { keyring }).catch((err: unknown) => {
  process.stderr.write(`failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
