// The patient app's first view on localhost, in Debian's headless Chromium at 360 px, against the
// whole stack from dist/ (intake, ledger, consent, audit, portal, a witness) with a patient of 10
// records: navigation -> timeline shown ("first view"), and -> every record's mark verified in the
// browser (tiles, checkpoint, signature, cosignature). Each run uses a fresh browser context (cold
// cache). Beside it, in the same run and browser, the navigation to the shell's smallest answer
// (/config.json), so the ratio says what the app adds over a bare round trip. Also the built
// bundle's size, raw and gzipped.
// Not a test. Run: npm run build && node dist/services/portal/bench/first-view.js
// (writes bench/results/portal.{json,md}; PORTAL_BENCH_RUNS, default 7).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { SignJWT } from 'jose';
import { bundleRows, eventually, hl7Adt, median, mllpSend, runBrowserBench, webBundle, writeBenchResult } from '@clinical-ledger/testing';

const TENANT = 'bench-portal';
const RECORDS = 10;
const RUNS = Number(process.env['PORTAL_BENCH_RUNS'] ?? 7);

runBrowserBench('portal-bench', { tenant: TENANT, authority: 'urn:oid:1.2.840.99999.8', services: ['intake', 'ledger', 'consent', 'audit', 'portal'], keyName: 'portal-bench', witness: true }, async ({ stack, browser, loadBefore }) => {
  const mrn = `PB${randomBytes(4).toString('hex')}`;
  const patient = stack.patient(mrn);
  for (let i = 0; i < RECORDS; i++) await mllpSend(stack.mllpPort, hl7Adt({ mrn, controlId: `BENCH${i}X${randomBytes(3).toString('hex')}` }));
  const token = await new SignJWT({ tenant: TENANT, roles: ['patient'], patient }).setProtectedHeader({ alg: 'HS256' }).setSubject(patient).setIssuedAt().setExpirationTime('30m').sign(readFileSync(stack.auth.secretFile));
  const portal = stack.svc('portal').url;
  // Every record on the chain and under a cosigned checkpoint before timing starts.
  await eventually(async () => {
    const res = await fetch(`${portal}/api/ledger/v1/chains/${TENANT}/patients/${encodeURIComponent(patient)}/events`, { headers: { authorization: `Bearer ${token}` } });
    return res.ok && ((await res.json()) as { events: unknown[] }).events.length >= RECORDS;
  }, 60_000, 'records on the chain');
  const runs: { firstView: number; allVerified: number; bare: number }[] = [];
  for (let r = 0; r < RUNS + 1; r++) {
    const ctx = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, locale: 'en' });
    const page = await ctx.newPage();
    let t = Date.now();
    await page.goto(`${portal}/config.json`);
    const bare = Date.now() - t;
    t = Date.now();
    await page.goto(`${portal}/#token=${token}`);
    await page.locator('[data-testid="record"]').nth(RECORDS - 1).waitFor({ timeout: 60_000 });
    const firstView = Date.now() - t;
    await page.locator('[data-testid="record"] [data-state="verified"]').nth(RECORDS - 1).waitFor({ timeout: 60_000 });
    const allVerified = Date.now() - t;
    await ctx.close();
    if (r > 0) runs.push({ firstView, allVerified, bare }); // the first run warms the services
  }
  const loadAfter = loadavg()[0];
  const files = webBundle('services/portal/public');
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    load: [loadBefore, loadAfter],
    records: RECORDS,
    runs,
    medianMs: { firstView: median(runs.map((x) => x.firstView)), allVerified: median(runs.map((x) => x.allVerified)), bare: median(runs.map((x) => x.bare)) },
    bundle: files,
  };
  const m = result.medianMs;
  const md = [
    '# Patient app: first view and bundle',
    '',
    `${result.date}, Node ${result.node}, ${result.cpus} CPUs, load ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)}. Debian Chromium headless at 360 px, fresh context per run (cold cache), whole stack from dist/ with a witness, a patient with ${RECORDS} records; median of ${runs.length} runs after one warm-up.`,
    '',
    '| measure | median ms | min | max | × bare round trip |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...(
      [
        ['navigation -> timeline shown (first view)', 'firstView'],
        [`navigation -> all ${RECORDS} records verified in the browser`, 'allVerified'],
        ['navigation -> /config.json (bare round trip)', 'bare'],
      ] as const
    ).map(([label, k]) => `| ${label} | ${m[k]} | ${Math.min(...runs.map((x) => x[k]))} | ${Math.max(...runs.map((x) => x[k]))} | ${(m[k] / Math.max(1, m.bare)).toFixed(1)} |`),
    '',
    ...bundleRows(files),
    '',
  ].join('\n');
  writeBenchResult('portal', result, md);
});
