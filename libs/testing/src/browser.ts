import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium: browser tests drive it with playwright-core, never a downloaded browser build. */
export const CHROMIUM = '/usr/bin/chromium';

function hasCjkFont(): boolean {
  try {
    return execFileSync('fc-list', [':lang=zh'], { encoding: 'utf8' }).trim().length > 0;
  } catch {
    return false;
  }
}

/**
 * CI on a fresh machine: installs Debian's `chromium` when missing, and with `cjkFont` a CJK font
 * (WenQuanYi Zen Hei) so that Chinese screenshots show characters rather than empty boxes.
 */
export function ensureChromium(opts: { label: string; cjkFont?: boolean }): void {
  const missing = [...(existsSync(CHROMIUM) ? [] : ['chromium']), ...(opts.cjkFont && !hasCjkFont() ? ['fonts-wqy-zenhei'] : [])];
  if (missing.length === 0) return;
  process.stderr.write(`[${opts.label}] installing Debian packages: apt-get install -y ${missing.join(' ')}\n`);
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit' });
}

/** Headless Chromium (installed first when missing). */
export async function launchChromium(opts: { label: string; cjkFont?: boolean }): Promise<Browser> {
  ensureChromium(opts);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** A fresh folder for a browser test's screenshots, printed so that CI's log says where they are. */
export function screenshotFolder(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${label}-screenshots-`));
  process.stderr.write(`[${label}] screenshots in ${dir}\n`);
  return dir;
}

/** axe-core's WCAG 2 A/AA rules (labels, names, roles, contrast) on the page as it stands. */
export async function accessibility(page: Page): Promise<{ violations: string[]; passed: string[] }> {
  // Evaluated through the DevTools protocol, not a <script> tag: the page's CSP stays as served.
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const result = (await page.evaluate(`axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })`)) as {
    violations: { id: string; help: string; nodes: { target: string[] }[] }[];
    passes: { id: string }[];
  };
  return {
    violations: result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
    passed: result.passes.map((p) => p.id),
  };
}
