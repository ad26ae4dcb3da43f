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
    // services/portal/web is the browser app: Vite builds it below, not SWC.
    if (rel.includes('/fixtures/') || rel.includes('/test/') || rel.startsWith('services/portal/web/')) continue;
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

// The patient app (services/portal/web) -> dist/services/portal/public, served by the portal shell.
const { build: viteBuild } = await import('vite');
await viteBuild({ configFile: join(root, 'services/portal/web/vite.config.mjs') });
console.log('build: portal app built to dist/services/portal/public');
