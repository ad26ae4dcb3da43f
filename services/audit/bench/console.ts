// The staff console on localhost, in Debian's headless Chromium at 1280 px, against intake, ledger,
// consent and audit from dist/: how long an HL7 message sent over MLLP takes to show in the open
// live feed (send -> its row on the page), beside the MLLP acknowledgement of the same message (send
// -> ACK: JetStream stored it; the ledger then appends it, and audit relays the receipt), so the
// ratio says what recording and the live path add; the first
// view of the overview (navigation -> the chain's row shown) beside a bare round trip
// (/console/config.json); and the built bundle's size, raw and gzipped.
// Not a test. Run: npm run build && node dist/services/audit/bench/console.js
// (writes bench/results/console.{json,md}; CONSOLE_BENCH_RUNS, default 15).
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { bundleRows, hl7Adt, median, mllpSend, runBrowserBench, webBundle, writeBenchResult } from '@clinical-ledger/testing';

const TENANT = 'bench-console';
const RUNS = Number(process.env['CONSOLE_BENCH_RUNS'] ?? 15);

runBrowserBench('console-bench', { tenant: TENANT, authority: 'urn:oid:1.2.840.99999.16', services: ['intake', 'ledger', 'consent', 'audit'], keyName: 'console-bench' }, async ({ stack, browser, loadBefore }) => {
  const token = await stack.auth.token({ tenant: TENANT, roles: ['auditor'], sub: 'bench-officer', expiresIn: '30m' });
  const audit = stack.svc('audit').url;
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  await page.goto(`${audit}/console/live#token=${token}`);
  await page.locator('[data-testid="live-state"][data-state="open"]').waitFor({ timeout: 30_000 });
  const receipts = page.locator('[data-testid="live-event"][data-type="receipt"]:not([data-recent="yes"])');
  const live: { ack: number; feed: number }[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const before = await receipts.count();
    const t = performance.now();
    const ack = mllpSend(stack.mllpPort, hl7Adt({ mrn: `CB${randomBytes(4).toString('hex')}`, controlId: `BENCH${i}X${randomBytes(3).toString('hex')}` })).then(() => performance.now() - t);
    await receipts.nth(before).waitFor({ timeout: 30_000 });
    const feed = performance.now() - t;
    if (i > 0) live.push({ ack: await ack, feed }); // the first message warms the path
    else await ack;
  }
  await ctx.close();

  const views: { overview: number; bare: number }[] = [];
  for (let r = 0; r <= 7; r++) {
    const c = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const p = await c.newPage();
    let t = performance.now();
    await p.goto(`${audit}/console/config.json`);
    const bare = performance.now() - t;
    t = performance.now();
    await p.goto(`${audit}/console/#token=${token}`);
    await p.getByTestId('chain').waitFor({ timeout: 30_000 });
    const overview = performance.now() - t;
    await c.close();
    if (r > 0) views.push({ overview, bare });
  }

  const loadAfter = loadavg()[0] ?? 0;
  const files = webBundle('services/audit/console');
  const ms = (x: number) => Math.round(x);
  const m = { ack: median(live.map((x) => x.ack)), feed: median(live.map((x) => x.feed)), overview: median(views.map((x) => x.overview)), bare: median(views.map((x) => x.bare)) };
  const result = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, load: [loadBefore, loadAfter], live, views, medianMs: m, bundle: files };
  const md = [
    '# Staff console: live feed, first view and bundle',
    '',
    `${result.date}, Node ${result.node}, ${result.cpus} CPUs, load ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)}. Debian Chromium headless at 1280 px, intake, ledger, consent and audit from dist/; live feed: median of ${live.length} messages sent one at a time after one warm-up; first view: fresh context per run (cold cache), median of ${views.length} after one warm-up.`,
    '',
    '| measure | median ms | min | max | ratio |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| MLLP send -> its receipt shown in the open live feed | ${ms(m.feed)} | ${ms(Math.min(...live.map((x) => x.feed)))} | ${ms(Math.max(...live.map((x) => x.feed)))} | ${(m.feed / Math.max(1, m.ack)).toFixed(2)} × ACK |`,
    `| MLLP send -> ACK (JetStream stored the event) | ${ms(m.ack)} | ${ms(Math.min(...live.map((x) => x.ack)))} | ${ms(Math.max(...live.map((x) => x.ack)))} | 1 |`,
    `| navigation -> overview's chain row shown (first view) | ${ms(m.overview)} | ${ms(Math.min(...views.map((x) => x.overview)))} | ${ms(Math.max(...views.map((x) => x.overview)))} | ${(m.overview / Math.max(1, m.bare)).toFixed(1)} × bare |`,
    `| navigation -> /console/config.json (bare round trip) | ${ms(m.bare)} | ${ms(Math.min(...views.map((x) => x.bare)))} | ${ms(Math.max(...views.map((x) => x.bare)))} | 1 |`,
    '',
    ...bundleRows(files),
    '',
  ].join('\n');
  writeBenchResult('console', result, md);
});
