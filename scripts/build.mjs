// Compiles the workspace to dist/ with SWC (keeps Nest's decorator metadata, rewrites the
// @clinical-ledger/* path aliases to relative imports). Type checking is `npm run typecheck`.
import { transformFile } from '@swc/core';
import { readFileSync, mkdirSync, writeFileSync, readdirSync, statSync, copyFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const swcrc = JSON.parse(readFileSync(join(root, '.swcrc'), 'utf8'));
const { paths } = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')).compilerOptions;
const roots = ['libs', 'services', 'tools', 'bench', 'scripts', 'tests'];
const assetExt = /\.(html|css|svg|json)$/;
// The browser apps: Vite builds them (below), not SWC. Each config names its output folder in dist/.
const webApps = [
  { dir: 'services/portal/web', what: 'portal app built to dist/services/portal/public' },
  { dir: 'services/audit/web', what: 'staff console built to dist/services/audit/console' },
];

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) yield* walk(full);
    else yield full;
  }
}

let count = 0;
const jobs = [];
for (const top of roots) {
  let files;
  try { files = [...walk(join(root, top))]; } catch { continue; }
  for (const file of files) {
    const rel = relative(root, file);
    // libs/browser is browser code, bundled into each app.
    if (rel.includes('/fixtures/') || rel.includes('/test/') || rel.startsWith('libs/browser/') || webApps.some((w) => rel.startsWith(`${w.dir}/`))) continue;
    const out = join(root, 'dist', rel);
    if (file.endsWith('.ts') && !file.endsWith('.spec.ts') && !file.endsWith('.d.ts')) {
      jobs.push(
        transformFile(file, {
          ...swcrc,
          swcrc: false,
          sourceMaps: true,
          jsc: { ...swcrc.jsc, baseUrl: root, paths },
          filename: file,
          outputPath: out.replace(/\.ts$/, '.js'),
        }).then((res) => {
          const js = out.replace(/\.ts$/, '.js');
          mkdirSync(dirname(js), { recursive: true });
          writeFileSync(js, `${res.code}\n//# sourceMappingURL=${js.split('/').pop()}.map\n`);
          if (res.map) writeFileSync(`${js}.map`, res.map);
          count++;
        }),
      );
    } else if (assetExt.test(file) && rel.includes('/assets/')) {
      mkdirSync(dirname(out), { recursive: true });
      copyFileSync(file, out);
    }
  }
}
await Promise.all(jobs);
console.log(`build: compiled ${count} files to dist/`);

const { build: viteBuild } = await import('vite');
for (const app of webApps) {
  await viteBuild({ configFile: join(root, app.dir, 'vite.config.mjs') });
  console.log(`build: ${app.what}`);
}
