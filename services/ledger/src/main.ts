import { loadConfig } from '@clinical-ledger/platform';
import { startLedger } from './bootstrap';
import { LedgerConfig } from './config';

let config: LedgerConfig;
try {
  config = loadConfig(LedgerConfig);
} catch (err) {
  // Names the variables to fix (never their values); EX_CONFIG.
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(78);
}
startLedger(config).catch((err: unknown) => {
  process.stderr.write(`failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
