// The Vite configuration of a browser app in this workspace (the patient app, the staff console):
// Preact JSX, @clinical-ledger/browser resolved from source, no inline script (the CSP admits none).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** `root`: the app's folder; `base`: where it is served; `outDir`: its folder in dist/. */
export function webAppConfig({ root, base, outDir }) {
  return defineConfig({
    root,
    base,
    logLevel: 'warn',
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    resolve: { alias: { '@clinical-ledger/browser': fileURLToPath(new URL('./src/index.ts', import.meta.url)) } },
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      // No inline module-preload polyfill: the CSP allows no inline script.
      modulePreload: { polyfill: false },
      reportCompressedSize: true,
    },
  });
}
