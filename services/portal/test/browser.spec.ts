// The patient app in real headless Chromium (Debian's package, driven by playwright-core) against
// the real services started from dist/ on real NATS and FerretDB, with a real witness: sign in, a
// record sent over MLLP appears, verified and cosigned on the phone; opening it shows up in "who
// saw my record"; a consent is granted and revoked through the FHIR Consent API (the clinician's
// next read is denied); an entry altered in the store is served by the ledger but the phone says
// "not verified"; another patient's event id in the URL gets 403; axe-core finds no accessibility
// violations. Screenshots go to the folder printed at the start.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { Binary, MongoClient } from 'mongodb';
import type { Browser, Page } from 'playwright-core';
import { accessibility, closeAll, eventually, hl7Adt, type Infra, launchChromium, mllpSend, screenshotFolder, type Stack, startInfra, startStack } from '@clinical-ledger/testing';

jest.setTimeout(300_000);

const TENANT = 'portal-h';
const AUTHORITY = 'urn:oid:1.2.840.99999.7';
const mrnA = `PA${randomBytes(4).toString('hex')}`;
const mrnB = `PB${randomBytes(4).toString('hex')}`;

/** Every mark on the page has its verdict (none still checking or waiting for a checkpoint). */
const settled = (page: Page) => page.locator('[data-state="checking"], [data-state="pending"]').first().waitFor({ state: 'detached', timeout: 30_000 });

const adt = (mrn: string) => hl7Adt({ mrn, controlId: `PORTAL${randomBytes(4).toString('hex')}` });

describe('portal in headless Chromium', () => {
  let infra: Infra;
  let stack: Stack;
  let browser: Browser;
  let mongo: MongoClient;
  const shots = screenshotFolder('portal');
  const logDir = mkdtempSync(join(tmpdir(), 'portal-logs-'));
  let patientA: string;
  let patientToken: string;
  let eventA: string;
  const portal = () => stack.svc('portal').url;

  const tokenFor = (claims: Record<string, unknown>, sub: string) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('30m').sign(readFileSync(stack.auth.secretFile));

  async function phone(locale: 'en' | 'zh-CN'): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 360, height: 740 }, locale, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    return ctx.newPage();
  }

  beforeAll(async () => {
    process.stderr.write(`[portal] service logs in ${logDir}\n`);
    infra = await startInfra({ name: 'portal' });
    stack = await startStack({
      env: { ...infra.env(), LEDGER_CHECKPOINT_INTERVAL_MS: '300' },
      tenant: TENANT,
      authority: AUTHORITY,
      services: ['intake', 'ledger', 'consent', 'audit', 'portal'],
      logDir,
      keyName: 'portal',
      witness: true,
    });
    mongo = new MongoClient(infra.mongoUrl);
    patientA = stack.patient(mrnA);
    patientToken = await tokenFor({ tenant: TENANT, roles: ['patient'], patient: patientA }, patientA);
    browser = await launchChromium({ label: 'portal', cjkFont: true });
  });

  afterAll(() => closeAll(browser, mongo, stack, infra));

  it('serves the app under a strict Content-Security-Policy', async () => {
    const res = await fetch(`${portal()}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
  });

  it('signs in and shows a record sent over MLLP, verified on the phone and cosigned by the witness', async () => {
    const page = await phone('en');
    const violations: string[] = [];
    page.on('console', (m) => m.text().includes('Content Security Policy') && violations.push(m.text()));
    const started = Date.now();
    await page.goto(`${portal()}/#token=${patientToken}`);
    await page.getByText('No records yet.').waitFor();
    // A figure for the README (first view on localhost), not an assertion.
    process.stderr.write(`[portal] first view (navigation to the timeline shown) in ${Date.now() - started} ms\n`);
    expect(await mllpSend(stack.mllpPort, adt(mrnA))).toContain('MSA|AA');
    const record = page.getByTestId('record').first();
    await record.waitFor({ timeout: 30_000 });
    eventA = (await record.getAttribute('data-event-id')) as string;
    // Verified in the browser against the pinned hospital key, with the pinned witness's cosignature.
    const mark = record.locator('[data-state="verified"][data-cosigned="1"]');
    await mark.waitFor({ timeout: 60_000 });
    expect(await mark.textContent()).toContain('Verified on this phone · cosigned by 1 witness');
    await page.screenshot({ path: join(shots, 'records-phone-en.png'), fullPage: true });
    expect(violations).toEqual([]);
    // The token left the address bar.
    expect(page.url()).not.toContain('token=');
  });

  it('opening the record is recorded, and shows up in "who saw my record"', async () => {
    const page = await phone('en');
    await page.goto(`${portal()}/#token=${patientToken}`);
    await page.getByTestId('record').first().locator('a').click();
    await page.getByTestId('record-open').waitFor();
    await page.getByTestId('nav-access').click();
    const entry = page.locator(`[data-testid="access"][data-record="${eventA}"][data-actor="${patientA}"]`);
    await entry.waitFor({ timeout: 15_000 });
    await entry.locator('[data-state="verified"]').waitFor({ timeout: 60_000 });
    await page.screenshot({ path: join(shots, 'access-phone-en.png'), fullPage: true });
  });

  it('grants a consent to a clinician through the FHIR Consent API, who reads; revokes it, and the next read is denied in the log', async () => {
    const page = await phone('en');
    await page.goto(`${portal()}/consents#token=${patientToken}`);
    await page.getByText('Nobody has your consent right now.').waitFor();
    await page.getByLabel('Clinician (their user id)').fill('dr-li');
    await page.getByLabel('What they may see').selectOption('all');
    await page.getByRole('button', { name: 'Grant' }).click();
    const consent = page.locator('[data-testid="consent"][data-status="active"]');
    await consent.waitFor({ timeout: 30_000 });
    expect(await consent.textContent()).toContain('dr-li may see all your records for treatment');
    // On the consent service as a FHIR Consent of this patient, recorded on the chain (versionId = seq).
    const search = (await (await fetch(`${stack.svc('consent').url}/fhir/r4/Consent`, { headers: { authorization: `Bearer ${patientToken}` } })).json()) as { total: number; entry: { resource: { status: string; meta: { versionId: string } } }[] };
    expect(search).toMatchObject({ total: 1, entry: [{ resource: { status: 'active' } }] });
    const clinician = await tokenFor({ tenant: TENANT, roles: ['clinician'] }, 'dr-li');
    const read = () => fetch(`${stack.svc('ledger').url}/v1/chains/${TENANT}/records/${encodeURIComponent(eventA)}?purpose=TREAT`, { headers: { authorization: `Bearer ${clinician}` } });
    expect((await read()).status).toBe(200);
    await page.screenshot({ path: join(shots, 'consents-phone-en.png'), fullPage: true });
    await consent.getByRole('button', { name: /Revoke/ }).click();
    // The app shows the revocation once it is on the chain; the very next read is denied.
    const revoked = page.locator('[data-testid="consent"][data-status="inactive"]');
    await revoked.waitFor({ timeout: 30_000 });
    expect(await revoked.textContent()).toContain('from the next read on, this no longer lets anyone in');
    expect((await read()).status).toBe(403);
    await page.screenshot({ path: join(shots, 'consents-revoked-phone-en.png'), fullPage: true });
    await page.getByTestId('nav-access').click();
    await page.locator('[data-testid="access"][data-actor="dr-li"][data-decision="deny"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="access"][data-actor="dr-li"][data-decision="permit"]').waitFor();
  });

  it('"who saw my record" is live: a clinician\'s read appears without a reload (audit\'s stream, through the shell)', async () => {
    const page = await phone('en');
    await page.goto(`${portal()}/access#token=${patientToken}`);
    await page.locator('[data-testid="live"][data-state="open"]').waitFor({ timeout: 30_000 });
    const clinician = await tokenFor({ tenant: TENANT, roles: ['clinician'] }, 'dr-wang');
    const read = await fetch(`${stack.svc('ledger').url}/v1/chains/${TENANT}/records/${encodeURIComponent(eventA)}?purpose=TREAT`, { headers: { authorization: `Bearer ${clinician}` } });
    const readAt = Date.now();
    expect(read.status).toBe(403); // no consent for dr-wang: denied, and recorded
    await page.locator('[data-testid="access"][data-actor="dr-wang"][data-decision="deny"]').waitFor({ timeout: 15_000 });
    // A figure for the README, not an assertion (the page never reloaded: nothing polls).
    process.stderr.write(`[portal] live access entry shown ${Date.now() - readAt} ms after the read was answered\n`);
    // An emergency (break-glass) read stands out in the log.
    const er = await tokenFor({ tenant: TENANT, roles: ['clinician'] }, 'dr-er');
    const emergency = await fetch(`${stack.svc('ledger').url}/v1/chains/${TENANT}/records/${encodeURIComponent(eventA)}?purpose=ETREAT&breakGlassReason=${encodeURIComponent('unconscious in the emergency room')}`, { headers: { authorization: `Bearer ${er}` } });
    expect(emergency.status).toBe(200);
    const flagged = page.locator('[data-testid="access"][data-actor="dr-er"][data-decision="permit"]');
    await flagged.waitFor({ timeout: 15_000 });
    expect(await flagged.getAttribute('class')).toContain('breakglass');
    expect(await flagged.textContent()).toContain('Emergency access');
  });

  it("another patient's event id in the URL gets 403", async () => {
    const patientB = stack.patient(mrnB);
    expect(await mllpSend(stack.mllpPort, adt(mrnB))).toContain('MSA|AA');
    const entries = mongo.db(infra.dbName).collection('ledger_entries');
    await eventually(async () => (await entries.countDocuments({ chain: TENANT, subject: patientB })) > 0, 30_000, "patient B's event on the chain");
    const other = String((await entries.findOne({ chain: TENANT, subject: patientB }))?.['eventId']);
    const page = await phone('en');
    await page.goto(`${portal()}/records/${encodeURIComponent(other)}#token=${patientToken}`);
    const refused = page.getByTestId('record-forbidden');
    await refused.waitFor();
    expect(await refused.getAttribute('data-status')).toBe('403');
    const direct = await fetch(`${portal()}/api/ledger/v1/chains/${TENANT}/records/${encodeURIComponent(other)}?purpose=PATRQT`, { headers: { authorization: `Bearer ${patientToken}` } });
    expect(direct.status).toBe(403);
    const timeline = await fetch(`${portal()}/api/ledger/v1/chains/${TENANT}/patients/${patientB}/events`, { headers: { authorization: `Bearer ${patientToken}` } });
    expect(timeline.status).toBe(403);
  });

  it('an entry altered in the store is still served, and the phone itself says "not verified" with the reason', async () => {
    const entries = mongo.db(infra.dbName).collection('ledger_entries');
    const doc = await entries.findOne({ chain: TENANT, eventId: eventA });
    const core = Buffer.from((doc?.['core'] as Binary).buffer);
    // Still canonical JSON, one digit of the recorded time changed: only the hashes can tell.
    const text = core.toString('utf8').replace(/"recordedAt":"(\d)/, (_m, d: string) => `"recordedAt":"${d === '1' ? '2' : '1'}`);
    expect(text).not.toBe(core.toString('utf8'));
    await entries.updateOne({ _id: doc?._id }, { $set: { core: new Binary(Buffer.from(text, 'utf8')) } });
    // The ledger serves the altered entry as stored: the verdict below is the browser's own.
    const served = await fetch(`${portal()}/api/ledger/v1/chains/${TENANT}/events/${encodeURIComponent(eventA)}`, { headers: { authorization: `Bearer ${patientToken}` } });
    expect(served.status).toBe(200);
    expect(Buffer.from(((await served.json()) as { coreBytes: string }).coreBytes, 'base64').toString('utf8')).toBe(text);
    const page = await phone('en');
    await page.goto(`${portal()}/#token=${patientToken}`);
    const bad = page.locator(`[data-testid="record"][data-event-id="${eventA}"] [data-state="not-verified"]`);
    await bad.waitFor({ timeout: 30_000 });
    expect(await bad.getAttribute('data-reason')).toBe('core_hash_mismatch');
    expect(await bad.textContent()).toContain('Not verified: this entry was changed after the hospital signed it');
    await page.screenshot({ path: join(shots, 'tampered-phone-en.png'), fullPage: true });
  });

  it('a checkpoint or hash tile altered on its way to the phone shows "not verified" with the reason', async () => {
    for (const [what, pattern, alter, reason] of [
      // One digit of the tree size changed: the hospital's signature no longer matches the note.
      ['checkpoint', '**/tlog/checkpoint', (b: Buffer) => Buffer.from(b.toString('utf8').replace(/\n(\d+)\n/, (_m, n: string) => `\n${Number(n) + 1}\n`)), 'note_bad_signature'],
      // Every hash of every tile flipped: no proof leads to the signed root.
      ['hash tiles', '**/tlog/tile/**', (b: Buffer) => Buffer.from(b.map((x) => x ^ 0xff)), 'proof_root_mismatch'],
    ] as const) {
      const page = await phone('en');
      await page.route(pattern, async (route) => {
        const res = await route.fetch();
        await route.fulfill({ response: res, body: alter(await res.body()) });
      });
      await page.goto(`${portal()}/access#token=${patientToken}`);
      const bad = page.locator('[data-testid="access"] [data-state="not-verified"]').first();
      await bad.waitFor({ timeout: 30_000 });
      expect(`${what}: ${await bad.getAttribute('data-reason')}`).toBe(`${what}: ${reason}`);
      expect(await page.locator('[data-testid="access"] [data-state="verified"]').count()).toBe(0);
      await page.context().close();
    }
  });

  it('has no axe-core violations (labels, names, contrast) on any view, at 360 px, in both languages', async () => {
    const found: string[] = [];
    for (const locale of ['en', 'zh-CN'] as const) {
      const page = await phone(locale);
      await page.goto(`${portal()}/#token=${patientToken}`);
      for (const [view, ready] of [
        ['records', '[data-testid="record"] [data-state]'],
        ['access', '[data-testid="access"] [data-state]'],
        ['consents', 'form.grant'],
      ] as const) {
        await page.getByTestId(`nav-${view}`).click();
        await page.locator(ready).first().waitFor({ timeout: 30_000 });
        const { violations, passed } = await accessibility(page);
        found.push(...violations.map((v) => `${locale} ${view}: ${v}`));
        // The checks that matter here did run and pass (not merely found nothing to look at).
        expect(passed).toEqual(expect.arrayContaining(['color-contrast', 'html-has-lang', ...(view === 'consents' ? ['label', 'button-name'] : ['link-name'])]));
      }
      // Nothing wider than the phone: no sideways scrolling at 360 px.
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);
    }
    expect(found).toEqual([]);
    // Keyboard alone: Tab reaches the navigation, Enter opens the view, Tab reaches the form's fields.
    const kb = await phone('en');
    await kb.goto(`${portal()}/#token=${patientToken}`);
    await kb.getByTestId('record').first().waitFor();
    const focused = () => kb.evaluate('document.activeElement ? (document.activeElement.dataset.testid || document.activeElement.name || "") : ""');
    for (let i = 0; i < 12 && (await focused()) !== 'nav-consents'; i++) await kb.keyboard.press('Tab');
    expect(await focused()).toBe('nav-consents');
    await kb.keyboard.press('Enter');
    await kb.locator('form.grant').waitFor();
    for (let i = 0; i < 12 && (await focused()) !== 'actor'; i++) await kb.keyboard.press('Tab');
    expect(await focused()).toBe('actor');
  });

  it('switches to zh-CN, and takes phone and desktop screenshots in both languages', async () => {
    // For the pictures: a second record (verified, beside the altered one) and a consent with an end date.
    expect(await mllpSend(stack.mllpPort, hl7Adt({ mrn: mrnA, event: 'A03', controlId: `PORTAL${randomBytes(4).toString('hex')}` }))).toContain('MSA|AA');
    const grant = await fetch(`${portal()}/api/consent/fhir/r4/Consent`, {
      method: 'POST',
      headers: { authorization: `Bearer ${patientToken}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'Consent',
        status: 'active',
        patient: { identifier: { system: 'urn:clinical-ledger:pseudonym', value: patientA } },
        provision: { type: 'permit', period: { end: '2027-03-01T23:59:59Z' }, actor: [{ reference: { identifier: { value: 'dr-li' } } }], purpose: [{ code: 'TREAT' }], class: [{ code: 'lab' }] },
      }),
    });
    expect(grant.status).toBe(201);
    for (const locale of ['en', 'zh-CN'] as const) {
      for (const [kind, viewport] of [['phone', { width: 360, height: 740 }], ['desktop', { width: 1280, height: 800 }]] as const) {
        const ctx = await browser.newContext({ viewport, locale });
        const page = await ctx.newPage();
        await page.goto(`${portal()}/access#token=${patientToken}`);
        await page.locator('[data-testid="access"] [data-state="verified"]').first().waitFor({ timeout: 30_000 });
        await settled(page);
        expect(await page.getAttribute('html', 'lang')).toBe(locale);
        await page.screenshot({ path: join(shots, `access-${kind}-${locale}.png`), fullPage: true });
        for (const view of ['records', 'consents'] as const) {
          await page.getByTestId(`nav-${view}`).click();
          await page.locator(view === 'records' ? '[data-testid="record"] [data-state="verified"]' : '[data-testid="consent"][data-status="active"]').first().waitFor({ timeout: 30_000 });
          await settled(page);
          await page.screenshot({ path: join(shots, `${view}-${kind}-${locale}.png`), fullPage: true });
        }
        await ctx.close();
      }
    }
    // Switchable: the language menu changes the page.
    const page = await phone('en');
    await page.goto(`${portal()}/#token=${patientToken}`);
    await page.getByTestId('language').selectOption('zh-CN');
    await page.getByText('我的记录').first().waitFor();
  });
});
