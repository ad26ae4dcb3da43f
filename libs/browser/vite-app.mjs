// The Vite configuration of a browser app in this workspace (the patient app, the staff console):
// Preact JSX, @clinical-ledger/browser resolved from source, no inline script (the CSP admits none).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The page every app shares: an app's index.html names only its title and `<div id="app">`; the
 * meta tags, its `src/styles.css` and its `src/main.tsx` entry are added here, before Vite bundles
 * the page ('pre'), so the stylesheet and the entry go through the build like written ones.
 */
const sharedPage = {
  name: 'clinical-ledger-page',
  transformIndexHtml: {
    order: 'pre',
    handler: () => [
      { tag: 'meta', attrs: { charset: 'utf-8' }, injectTo: 'head-prepend' },
      { tag: 'meta', attrs: { name: 'viewport', content: 'width=device-width, initial-scale=1' }, injectTo: 'head-prepend' },
      { tag: 'meta', attrs: { name: 'color-scheme', content: 'light' }, injectTo: 'head-prepend' },
      { tag: 'link', attrs: { rel: 'stylesheet', href: '/src/styles.css' }, injectTo: 'head' },
      { tag: 'script', attrs: { type: 'module', src: '/src/main.tsx' }, injectTo: 'body' },
    ],
  },
};

/** `root`: the app's folder; `base`: where it is served; `outDir`: its folder in dist/. */
export function webAppConfig({ root, base, outDir }) {
  return defineConfig({
    root,
    base,
    logLevel: 'warn',
    plugins: [sharedPage],
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
