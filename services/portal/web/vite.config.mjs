// Builds the patient app into dist/services/portal/public (served by the Nest shell).
import { fileURLToPath } from 'node:url';
import { webAppConfig } from '../../../libs/browser/vite-app.mjs';

export default webAppConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  outDir: fileURLToPath(new URL('../../../dist/services/portal/public', import.meta.url)),
});
