// The staff console in real headless Chromium (Debian's package, driven by playwright-core) against
// the real intake, ledger, consent and audit processes (built, from dist/) on real NATS and FerretDB:
// a record sent over MLLP shows in the live feed, a forged checkpoint raises an alert the overview
// shows, and a patient's access log in the console is the one on the chain (and exports as CSV and
// FHIR). Screenshots go to the folder printed at the start.
import { jetstream } from '@nats-io/jetstream';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Binary } from 'mongodb';
import type { Page } from 'playwright-core';
import { ACCESS_CSV_COLUMNS, EVENT_TYPES, type ActorActivity, type AlertPage, type CheckpointMessage } from '@clinical-ledger/contracts';
import { webAppPolicy } from '@clinical-ledger/platform';
import { accessibility, eventually, hl7Adt, mllpSend, screenshotFolder, type ServiceName } from '@clinical-ledger/testing';
import { auditTestBed } from './helpers';

jest.setTimeout(300_000);

const TENANT = 'console-h';
const AUTHORITY = 'urn:oid:1.2.840.99999.15';

describe('staff console in headless Chromium', () => {
  const bed = auditTestBed('console', {
    stack: () => {
      process.stderr.write(`[console] service logs in ${logDir}\n`);
      return {
        env: { LEDGER_CHECKPOINT_INTERVAL_MS: '300', AUDIT_TENANTS: TENANT },
        tenant: TENANT,
        authority: AUTHORITY,
        services: ['intake', 'ledger', 'consent', 'audit'],
        logDir,
        keyName: 'console',
        witness: true,
      };
    },
    chromium: 'console',
  });
  const mrn = `CN${randomBytes(4).toString('hex')}`;
  let patient: string;
  const shots = screenshotFolder('console');
  const logDir = mkdtempSync(join(tmpdir(), 'console-logs-'));
  let officer: string;

  /** Sends an HL7 admission of `mrn` over MLLP and answers the event id the ledger recorded for it. */
  async function admit(mrn: string): Promise<string> {
    expect(await mllpSend(bed.stack.mllpPort, hl7Adt({ controlId: `CONSOLE${randomUUID().slice(0, 8)}`, mrn }))).toContain('MSA|AA');
    const subject = bed.stack.patient(mrn);
    await eventually(async () => (await entries().countDocuments({ chain: TENANT, subject })) > 0, 30_000, "the patient's record on the chain");
    return String((await entries().findOne({ chain: TENANT, subject }))?.['eventId']);
  }

  const svc = (n: ServiceName) => bed.stack.svc(n);
  const entries = () => bed.mongo.db(bed.infra.dbName).collection('ledger_entries');

  async function page(path: string): Promise<Page> {
    const ctx = await bed.browser.newContext({ viewport: { width: 1280, height: 860 } });
    const p = await ctx.newPage();
    await p.goto(`${svc('audit').url}/console${path}#token=${officer}`);
    return p;
  }

  beforeAll(async () => {
    patient = bed.stack.patient(mrn);
    officer = await bed.stack.auth.token({ tenant: TENANT, roles: ['auditor'], sub: 'privacy-officer', expiresIn: '30m' });
  });

  it('serves the console under a strict Content-Security-Policy, every view from one page', async () => {
    for (const path of ['/console/', '/console/alerts', '/console/patients', '/console/live']) {
      const res = await fetch(`${svc('audit').url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-security-policy')).toBe(webAppPolicy());
      expect(await res.text()).toContain('<div id="app">');
    }
    expect((await fetch(`${svc('audit').url}/console/assets/..%2Fconfig.json`)).status).toBe(404);
  });

  it('shows a record sent over MLLP in the live feed as the ledger records it', async () => {
    const p = await page('/live');
    const violations: string[] = [];
    p.on('console', (m) => m.text().includes('Content Security Policy') && violations.push(m.text()));
    await p.locator('[data-testid="live-state"][data-state="open"][data-transport="websocket"]').waitFor({ timeout: 15_000 });
    expect(p.url()).not.toContain('token=');
    const recordId = await admit(`CL${randomBytes(4).toString('hex')}`);
    // Live: it arrives on the open stream (a generous bound; how fast is for bench/, not for a test).
    await p.locator(`[data-testid="live-event"][data-type="receipt"][data-recent="no"][data-event-id="${recordId}"]`).waitFor({ timeout: 15_000 });
    await p.locator('[data-testid="live-event"][data-type="checkpoint"]').first().waitFor({ timeout: 15_000 });
    await p.screenshot({ path: join(shots, 'live.png'), fullPage: true });
    expect(violations).toEqual([]);
  });

  it("shows a patient's access log that matches the chain, and exports it as CSV and FHIR AuditEvents", async () => {
    const recordId = await admit(mrn);
    const consent = await fetch(`${svc('consent').url}/v1/consents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await bed.stack.auth.token({ tenant: TENANT, roles: ['patient'], sub: patient, patient })}`, 'content-type': 'application/json' },
      body: JSON.stringify({ patient, provision: 'permit', actors: ['dr-li'], purposes: ['TREAT'], dataclasses: [] }),
    });
    expect(consent.status).toBe(201);
    const read = async (actor: string) =>
      (await fetch(`${svc('ledger').url}/v1/chains/${TENANT}/records/${encodeURIComponent(recordId)}?purpose=TREAT`, { headers: { authorization: `Bearer ${await bed.stack.auth.token({ tenant: TENANT, roles: ['clinician'], sub: actor })}` } })).status;
    await eventually(async () => (await read('dr-li')) === 200, 30_000, 'dr-li reads under the consent');
    for (let i = 0; i < 3; i++) expect(await read('dr-no')).toBe(403);

    // The chain's own record of who read this patient: access entries, from their signed core bytes.
    const onChain = async () => {
      const docs = await entries().find({ chain: TENANT, type: EVENT_TYPES.recordAccessed }).toArray();
      return docs
        .map((d) => ({ seq: d['seq'] as number, core: JSON.parse(Buffer.from((d['core'] as Binary).buffer).toString('utf8')) as { event: { subject?: string } } }))
        .filter((d) => d.core.event.subject === patient)
        .map((d) => d.seq)
        .sort((a, b) => a - b);
    };
    const chainSeqs = await onChain();
    expect(chainSeqs.length).toBeGreaterThanOrEqual(3);

    // Found by the raw identifier (pseudonymised on the server), it is the same patient and the same log.
    const p = await page('/patients');
    const shown = async (): Promise<number[]> => {
      await p.getByLabel('identifier (MRN, national id)').check();
      await p.getByLabel('Identifier system').fill(AUTHORITY);
      await p.getByLabel('Identifier', { exact: true }).fill(mrn);
      await p.getByRole('button', { name: 'Show access log' }).click();
      await p.getByTestId('access-total').waitFor();
      expect(await p.getByTestId('access-total').getAttribute('data-subject')).toBe(patient);
      return (await p.getByTestId('access-row').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq'))))).sort((a, b) => a - b);
    };
    await eventually(async () => JSON.stringify(await shown()) === JSON.stringify(chainSeqs), 30_000, 'the console shows every access entry of the chain');
    // The identifier is not left in the form.
    expect(await p.getByLabel('Identifier', { exact: true }).inputValue()).toBe('');
    expect(await p.locator('[data-testid="access-row"][data-actor="dr-li"][data-decision="permit"]').count()).toBeGreaterThanOrEqual(1);
    expect(await p.locator('[data-testid="access-row"][data-actor="dr-no"][data-decision="deny"]').count()).toBe(3);
    await p.screenshot({ path: join(shots, 'patient-access.png'), fullPage: true });

    const [csv] = await Promise.all([p.waitForEvent('download'), p.getByTestId('export-csv').click()]);
    const lines = readFileSync(await csv.path(), 'utf8').trim().split(/\r?\n/);
    expect(lines[0]).toBe(ACCESS_CSV_COLUMNS.join(','));
    expect(lines.slice(1).map((l) => Number(l.split(',')[0])).sort((a, b) => a - b)).toEqual(chainSeqs);
    const [fhir] = await Promise.all([p.waitForEvent('download'), p.getByTestId('export-fhir').click()]);
    const bundle = JSON.parse(readFileSync(await fhir.path(), 'utf8')) as { resourceType: string; entry: { resource: { resourceType: string } }[] };
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.entry).toHaveLength(chainSeqs.length);
    expect(bundle.entry.every((e) => e.resource.resourceType === 'AuditEvent')).toBe(true);

    // The reader who was denied three times: the console shows what the audit service found about them.
    const since = new Date(Date.now() - 7 * 86_400_000).toISOString();
    const found = (await (await fetch(`${svc('audit').url}/v1/audit/${TENANT}/actors/dr-no/activity?since=${encodeURIComponent(since)}`, { headers: { authorization: `Bearer ${officer}` } })).json()) as ActorActivity;
    expect(found).toMatchObject({ actor: 'dr-no', reads: 3, denied: 3 });
    const a = await page('/actors');
    await a.locator('[data-testid="actor-row"][data-actor="dr-no"]').getByRole('button', { name: 'dr-no' }).click();
    await a.getByTestId('actor-summary').waitFor();
    expect((await a.getByTestId('outlier').evaluateAll((os) => os.map((o) => o.getAttribute('data-kind')))).sort()).toEqual(found.outliers.map((o) => o.kind).sort());
    expect(await a.locator('[data-testid="access-row"][data-decision="deny"]').count()).toBe(3);
    await a.screenshot({ path: join(shots, 'actor-activity.png'), fullPage: true });
  });

  it('a forged checkpoint raises an alert that shows on the overview', async () => {
    const ov = await page('/');
    await ov.locator('[data-testid="chain"][data-state="verified"]').waitFor({ timeout: 30_000 });
    // The regulator's witness (omniwitness on loopback) cosigned what the monitor verified.
    await ov.getByTestId('cosigned').getByText('1 of 1 cosigned (quorum 1)').waitFor({ timeout: 30_000 });
    await ov.screenshot({ path: join(shots, 'overview.png'), fullPage: true });
    const latest = (await (await fetch(`${svc('audit').url}/v1/audit/${TENANT}/checkpoints/latest`, { headers: { authorization: `Bearer ${officer}` } })).json()) as { size: number; note: string };
    // The genuine note with another root: its signature no longer verifies.
    const lines = latest.note.split('\n');
    const root = randomBytes(32);
    lines[2] = root.toString('base64');
    const forged: CheckpointMessage = { tenant: TENANT, size: latest.size, rootHash: root.toString('hex'), note: lines.join('\n') };
    await jetstream(bed.nc).publish(bed.subjects.checkpoint(TENANT), JSON.stringify(forged), { msgID: `forged:${randomUUID()}` });
    await ov.locator('[data-testid="chain"][data-state="alert"]').waitFor({ timeout: 30_000 });
    await ov.locator('[data-testid="overview-alert"][data-kind="bad_signature"]').waitFor();
    await ov.screenshot({ path: join(shots, 'overview-alert.png'), fullPage: true });
    await ov.screenshot({ path: join(shots, 'overview-alert.png'), fullPage: true });

    // Acknowledged from the alerts page: recorded with who and when, and no longer open.
    const al = await page('/alerts');
    const row = al.locator('[data-testid="alert"][data-kind="bad_signature"]');
    await row.getByRole('textbox').fill('forged note from the test; ledger key unchanged');
    await row.getByTestId('ack').click();
    await al.getByText('No open alerts.').waitFor({ timeout: 15_000 });
    await al.getByLabel('Only open (not yet acknowledged)').uncheck();
    await al.locator('[data-testid="alert"][data-kind="bad_signature"][data-acked="yes"]').getByTestId('acked').waitFor();
    await al.screenshot({ path: join(shots, 'alerts.png'), fullPage: true });
    const all = (await (await fetch(`${svc('audit').url}/v1/audit/${TENANT}/alerts`, { headers: { authorization: `Bearer ${officer}` } })).json()) as AlertPage;
    expect(all.alerts.find((x) => x.kind === 'bad_signature')?.ack).toMatchObject({ by: 'privacy-officer', note: 'forged note from the test; ledger key unchanged' });
  });

  it('runs a full verification of the chain from the page, with a progress bar, and shows the result', async () => {
    const v = await page('/verify');
    await v.getByTestId('verify-run').click();
    await v.getByTestId('verify-progress').waitFor();
    const result = v.locator('[data-testid="verify-result"][data-state="ok"]');
    await result.waitFor({ timeout: 60_000 });
    const size = await entries().countDocuments({ chain: TENANT });
    expect(await result.textContent()).toContain(`${size} of ${size} entries`);
    await v.screenshot({ path: join(shots, 'verify.png'), fullPage: true });
  });

  it('has no axe-core violations (labels, names, contrast) on any view', async () => {
    const found: string[] = [];
    for (const view of ['', 'alerts', 'patients', 'actors', 'verify', 'live']) {
      const p = await page(`/${view}`);
      await p.locator(`main[data-view="${view || 'overview'}"] h2`).first().waitFor();
      if (view === '') await p.getByTestId('chain').waitFor();
      if (view === 'patients') {
        await p.getByLabel('Patient').fill(patient);
        await p.getByRole('button', { name: 'Show access log' }).click();
        await p.getByTestId('access-total').waitFor();
      }
      found.push(...(await accessibility(p)).violations.map((v) => `${view || 'overview'}: ${v}`));
      await p.context().close();
    }
    expect(found).toEqual([]);
  });
});
