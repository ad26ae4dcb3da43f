// Builds the staff console into dist/services/audit/console (served under /console/ by the audit service).
import { fileURLToPath } from 'node:url';
import { webAppConfig } from '../../../libs/browser/vite-app.mjs';

export default webAppConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  outDir: fileURLToPath(new URL('../../../dist/services/audit/console', import.meta.url)),
});
