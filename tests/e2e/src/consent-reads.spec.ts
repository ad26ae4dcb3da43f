import { jetstream } from '@nats-io/jetstream';
import { connect, NatsConnection, Subscription } from '@nats-io/transport-node';
import { AccessRecord, BreakGlassAlert, EVENT_TYPES, LedgerEvent, Receipt, Subjects } from '@clinical-ledger/contracts';
import { eventually, freePort, Infra, ledgerTestKeys, ServiceProcess, spawnService, startInfra, testAuth, TestAuth, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { MongoClient } from 'mongodb';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * "Who may see my record, and who did?": the consent service and the ledger as spawned processes
 * on real NATS JetStream and a real Mongo wire server. Consent changes become chain entries; a
 * record read asks consent.decide, its access entry is durably on the chain before any data
 * leaves, and break-glass is permitted, recorded and alerted.
 */
const TENANT = 'hosp-a';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('consent-gated record reads across consent and ledger', () => {
  let infra: Infra;
  const keys = ledgerTestKeys('e2e-ledger');
  let auth: TestAuth;
  let subjects: Subjects;
  let nc: NatsConnection;
  let ledger: ServiceProcess;
  let consent: ServiceProcess;
  let ledgerEnv: Record<string, string>;
  let ledgerPort: number;
  let consentEnv: Record<string, string>;
  const consents: ServiceProcess[] = [];
  let mongo: MongoClient;
  /** Every ledger process this file started (one is killed and replaced). */
  const ledgers: ServiceProcess[] = [];
  const tokens: Record<string, string> = {};

  async function http(svc: ServiceProcess, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${svc.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Json };
  }

  const read = (eventId: string, query: string, token = tokens['clinician'] as string) =>
    http(ledger, 'GET', `/v1/chains/${TENANT}/records/${encodeURIComponent(eventId)}?${query}`, token);

  /** The chain entry at a seq, as the ledger serves it (no waiting: it must already be there). */
  const entryAt = (seq: number) => http(ledger, 'GET', `/v1/chains/${TENANT}/entries/${seq}`, tokens['auditor'] as string);

  /**
   * The AccessRecord of an access entry, read back through the same gate by the patient it is
   * about ("who saw my record": a patient token reads its own patient's entries).
   */
  async function accessRecord(access: Receipt): Promise<AccessRecord> {
    const subject = (await entryAt(access.seq)).body['core'].event.subject as string;
    const patient = await auth.token({ tenant: TENANT, roles: ['patient'], sub: `app-${subject}`, patient: subject });
    const r = await read(access.eventId, 'purpose=PATRQT', patient);
    expect(r.status).toBe(200);
    return r.body['data'] as AccessRecord;
  }

  /** Appends a clinical record the way intake does (JetStream, Nats-Msg-Id = event id) and waits for it. */
  async function clinicalRecord(subject: string, data: unknown): Promise<LedgerEvent> {
    const event = testEvent(TENANT, { subject, data });
    await jetstream(nc).publish(subjects.append(TENANT, 'clinical'), JSON.stringify(event), { msgID: event.id });
    await eventually(async () => (await http(ledger, 'GET', `/v1/chains/${TENANT}/receipts/${encodeURIComponent(event.id)}`, tokens['auditor'] as string)).status === 200, 20_000, 'record on the chain');
    return event;
  }

  async function grant(body: Json): Promise<Json> {
    const r = await http(consent, 'POST', '/v1/consents', tokens['admin'] as string, { tenant: TENANT, ...body });
    expect(r.status).toBe(201);
    return r.body;
  }

  /** Alerts stored on audit.breakglass.<tenant> in the AUDIT stream. */
  async function storedAlerts(): Promise<BreakGlassAlert[]> {
    const js = jetstream(nc);
    const c = await js.consumers.get(subjects.stream('AUDIT'), { filter_subjects: [subjects.audit('breakglass', TENANT)] });
    const out: BreakGlassAlert[] = [];
    const info = await c.info(true);
    if (info.num_pending === 0) return out;
    for await (const m of await c.fetch({ max_messages: info.num_pending, expires: 2_000 })) {
      out.push(m.json<BreakGlassAlert>());
      if (m.info.pending === 0) break;
    }
    return out;
  }

  async function startLedger(): Promise<ServiceProcess> {
    // Always the same port: the consent service reaches the ledger there (rebuild), also after the restart.
    const svc = await spawnService('ledger', ledgerEnv, { port: ledgerPort });
    ledgers.push(svc);
    await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 30_000, 'ledger ready');
    return svc;
  }

  beforeAll(async () => {
    infra = await startInfra({ name: 'consent-reads' });
    auth = testAuth();
    subjects = new Subjects(infra.namespace);
    const dir = mkdtempSync(join(tmpdir(), 'consent-reads-'));
    const common = infra.env({ LOG_LEVEL: 'info', ...auth.env });
    // A short ack wait: after the SIGKILL below, an access event the dead ledger had taken is
    // redelivered to its successor quickly.
    ledgerEnv = { ...common, ...keys.ledgerEnv, LEDGER_ACK_WAIT_MS: '2000', LEDGER_CHECKPOINT_INTERVAL_MS: '500' };
    ledgerPort = await freePort();
    const serviceToken = join(dir, 'consent-service.jwt');
    tokens['consentService'] = await auth.token({ tenant: '*', roles: ['service'], sub: 'svc-consent', expiresIn: '1h' });
    writeFileSync(serviceToken, tokens['consentService'], { mode: 0o600 });
    consentEnv = {
      ...common,
      CONSENT_DEFAULT: 'deny',
      CONSENT_RECEIPT_TIMEOUT_MS: '1500',
      CONSENT_SWEEP_INTERVAL_MS: '500',
      CONSENT_LEDGER_URL: `http://127.0.0.1:${ledgerPort}`,
      CONSENT_LEDGER_TOKEN_FILE: serviceToken,
    };
    [ledger, consent] = await Promise.all([startLedger(), spawnService('consent', consentEnv)]);
    consents.push(consent);
    mongo = new MongoClient(infra.mongoUrl);
    await eventually(async () => (await fetch(`${consent.url}/readyz`)).status === 200, 30_000, 'consent ready');
    nc = await connect({ servers: infra.natsUrl });
    tokens['admin'] = await auth.token({ tenant: TENANT, roles: ['admin'], sub: 'admin-a' });
    tokens['clinician'] = await auth.token({ tenant: TENANT, roles: ['clinician'], sub: 'dr-x' });
    tokens['nurse'] = await auth.token({ tenant: TENANT, roles: ['nurse'], sub: 'n-1' });
    tokens['auditor'] = await auth.token({ tenant: TENANT, roles: ['auditor'], sub: 'audit-office' });
  });

  afterAll(async () => {
    await nc?.close();
    await mongo?.close();
    await Promise.all([ledger?.stop(), consent?.stop()]);
    await infra?.close();
  });

  describe('one patient through grant, revoke and break-glass', () => {
    let record: LedgerEvent;
    let grantSeq: number;
    let consentId: string;

    beforeAll(async () => {
      record = await clinicalRecord(testPseudonym('alice'), { loinc: '718-7', hb: 13.2 });
      // The hospital's audit office may read alice's access log ("who saw my record").
      await grant({ patient: testPseudonym('alice'), provision: 'permit', roles: ['auditor'], purposes: ['HOPERAT'], dataclasses: ['access'] });
    });

    it('without consent, the hospital default denies, and the denied attempt is on the chain', async () => {
      const r = await read(record.id, 'purpose=TREAT');
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({ error: 'consent_denied', decision: { decision: 'deny', consentSeq: null, breakGlass: false } });
      expect(r.body['data']).toBeUndefined();
      const entry = await entryAt(r.body['access'].seq);
      expect(entry.body).toMatchObject({ eventId: r.body['access'].eventId, core: { event: { type: EVENT_TYPES.recordAccessed, subject: testPseudonym('alice'), dataclass: 'access' } } });
    });

    it('a denied clinician (or integration) cannot grant itself access: 403, alerted, and the read stays denied', async () => {
      // The reported hole: an open permit ("everyone") posted by the very token that was denied.
      const open = { tenant: TENANT, patient: testPseudonym('alice'), provision: 'permit', status: 'active' };
      const byClinician = await http(consent, 'POST', '/v1/consents', tokens['clinician'] as string, open);
      expect(byClinician).toMatchObject({ status: 403, body: { error: 'forbidden', action: 'consent.change' } });
      const integration = await auth.token({ tenant: TENANT, roles: ['integration'], sub: 'mirth-1' });
      expect(await http(consent, 'POST', '/v1/consents', integration, open)).toMatchObject({ status: 403, body: { error: 'forbidden' } });
      expect((await read(record.id, 'purpose=TREAT')).body).toMatchObject({ error: 'consent_denied' });
      // Integration reads no records at all, whatever a consent says.
      expect(await read(record.id, 'purpose=TREAT', integration)).toMatchObject({ status: 403, body: { error: 'forbidden', action: 'ledger.record.read' } });
      // Both refusals are alerts on audit.alert.<tenant>.
      const js = jetstream(nc);
      const c = await js.consumers.get(subjects.stream('AUDIT'), { filter_subjects: [subjects.audit('alert', TENANT)] });
      const seen: { refused?: { actor: string } }[] = [];
      for await (const m of await c.fetch({ max_messages: 2, expires: 5_000 })) {
        seen.push(m.json());
        if (seen.length === 2) break;
      }
      expect(seen.map((a) => a.refused?.actor).sort()).toEqual(['dr-x', 'mirth-1']);
    });

    it('grant -> read permitted, citing the consent entry, and recorded before the answer', async () => {
      const g = await grant({ patient: testPseudonym('alice'), provision: 'permit', roles: ['clinician'], purposes: ['TREAT'], dataclasses: ['lab'] });
      grantSeq = g['receipt'].seq;
      consentId = g['consent'].consentId;
      const consentEntry = await entryAt(grantSeq);
      expect(consentEntry.body).toMatchObject({ eventId: g['eventId'], core: { event: { type: EVENT_TYPES.consentGranted, subject: testPseudonym('alice'), dataclass: 'consent' } } });

      const r = await read(record.id, 'purpose=TREAT');
      expect(r.status).toBe(200);
      expect(r.body['data']).toEqual(record.data);
      expect(r.body['decision']).toEqual({
        decision: 'permit',
        reason: `permitted by consent ${consentId} (seq ${grantSeq}), role-specific`,
        consentSeq: grantSeq,
        breakGlass: false,
      });
      // On the chain already (no waiting), after the consent entry that allowed it.
      const access = r.body['access'] as Receipt;
      expect(access.seq).toBeGreaterThan(grantSeq);
      expect((await entryAt(access.seq)).body).toMatchObject({ eventId: access.eventId, leafHash: access.leafHash });
      expect(await accessRecord(access)).toEqual({
        actor: 'dr-x',
        role: 'clinician',
        purpose: 'TREAT',
        recordEventId: record.id,
        recordSeq: expect.any(Number),
        decision: 'permit',
        reason: r.body['decision'].reason,
        consentSeq: grantSeq,
        breakGlass: false,
      });
      // The consent names clinicians: a nurse is still denied.
      expect((await read(record.id, 'purpose=TREAT', tokens['nurse'])).status).toBe(403);
    });

    it('revoke -> read denied and recorded', async () => {
      const r0 = await http(consent, 'POST', `/v1/consents/${consentId}/revoke`, tokens['admin'] as string, { reason: 'patient withdrew consent' });
      expect(r0.status).toBe(201);
      const revokeSeq = r0.body['receipt'].seq as number;
      expect((await entryAt(revokeSeq)).body).toMatchObject({ core: { event: { type: EVENT_TYPES.consentRevoked, subject: testPseudonym('alice') } } });

      const r = await read(record.id, 'purpose=TREAT');
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({ error: 'consent_denied', decision: { decision: 'deny', consentSeq: null, reason: 'no applicable consent: hospital default is deny' } });
      expect(r.body['data']).toBeUndefined();
      const access = r.body['access'] as Receipt;
      expect(access.seq).toBeGreaterThan(revokeSeq);
      expect((await entryAt(access.seq)).body).toMatchObject({ eventId: access.eventId });
      expect(await accessRecord(access)).toMatchObject({ actor: 'dr-x', recordEventId: record.id, decision: 'deny', consentSeq: null, breakGlass: false });
    });

    it('break-glass -> permitted despite an explicit deny, recorded with its reason, alert seen', async () => {
      const deny = await grant({ patient: testPseudonym('alice'), provision: 'deny', dataclasses: ['lab'] });
      expect((await read(record.id, 'purpose=TREAT')).body['decision']).toMatchObject({ decision: 'deny', consentSeq: deny['receipt'].seq });

      const live: BreakGlassAlert[] = [];
      const sub: Subscription = nc.subscribe(subjects.audit('breakglass', TENANT), {
      callback: (_e, m) => {
        live.push(m.json<BreakGlassAlert>());
      },
    });
      await nc.flush();
      const reason = 'unconscious in the ED, anticoagulant status unknown';
      const r = await read(record.id, `purpose=ETREAT&breakGlassReason=${encodeURIComponent(reason)}`);
      expect(r.status).toBe(200);
      expect(r.body['data']).toEqual(record.data);
      expect(r.body['decision']).toMatchObject({ decision: 'permit', breakGlass: true, consentSeq: null, reason: expect.stringContaining('overriding consent') });
      const access = r.body['access'] as Receipt;
      expect((await entryAt(access.seq)).body).toMatchObject({ eventId: access.eventId });
      expect(await accessRecord(access)).toMatchObject({ actor: 'dr-x', purpose: 'ETREAT', decision: 'permit', breakGlass: true, breakGlassReason: reason });

      // The alert was stored before the permit went out, so it is in the AUDIT stream already.
      const alerts = await storedAlerts();
      expect(alerts.at(-1)).toMatchObject({ tenant: TENANT, subject: testPseudonym('alice'), actor: 'dr-x', role: 'clinician', purpose: 'ETREAT', dataclass: 'lab' });
      await eventually(() => live.length > 0, 5_000, 'live alert');
      expect(live[0]).toMatchObject({ subject: testPseudonym('alice'), actor: 'dr-x' });
      // The free-text reason is in the access entry (encrypted, read back above), on no stream.
      expect(JSON.stringify([alerts.at(-1), live[0]])).not.toContain(reason);
      sub.unsubscribe();

      // Break-glass is for clinical staff: the audit office reads no records at all (docs/ACCESS-MODEL.md).
      const auditor = await read(record.id, `purpose=ETREAT&breakGlassReason=${encodeURIComponent('curious')}`, tokens['auditor']);
      expect(auditor).toMatchObject({ status: 403, body: { error: 'forbidden', action: 'ledger.record.read' } });
    });
  });

  let bobRecord: string;

  it('a read never returns data without its access entry on the chain, even when the ledger dies mid-read', async () => {
    const record = await clinicalRecord(testPseudonym('bob'), { loinc: '2345-7', glucose: 5.4 });
    bobRecord = record.id;
    await grant({ patient: testPseudonym('bob'), provision: 'permit', roles: ['clinician'], purposes: ['TREAT'] });
    await grant({ patient: testPseudonym('bob'), provision: 'permit', roles: ['auditor'], purposes: ['HOPERAT'], dataclasses: ['access'] });
    expect((await read(record.id, 'purpose=TREAT')).status).toBe(200);

    // Kill the ledger the moment consent's decision reaches it: between the decision and its answer.
    // (Replies travel to the requester's inbox, the ledger's own prefix `_INBOX_ledger`; a listener there sees them too.)
    const victim = ledger;
    let decided = 0;
    const KILL_AT = 4;
    const watch = nc.subscribe('_INBOX_ledger.>', {
      callback: (_e, m) => {
        let body: unknown;
        try {
          body = m.json();
        } catch {
          return;
        }
        if (typeof body === 'object' && body !== null && 'decision' in body && 'consentSeq' in body && ++decided === KILL_AT) {
          process.kill(victim.pid, 'SIGKILL');
        }
      },
    });
    await nc.flush();
    const attempts = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        // Staggered, so some reads are answered before the kill and some are in flight at it.
        await new Promise((r) => setTimeout(r, i * 15));
        try {
          const res = await fetch(`${victim.url}/v1/chains/${TENANT}/records/${encodeURIComponent(record.id)}?purpose=TREAT`, {
            headers: { authorization: `Bearer ${tokens['clinician']}` },
          });
          return { status: res.status, body: (await res.json()) as Json };
        } catch (err) {
          return { error: String(err) };
        }
      }),
    );
    watch.unsubscribe();
    expect(await victim.stop()).toBe('SIGKILL');
    const answered = attempts.filter((a): a is { status: number; body: Json } => 'status' in a);
    const cut = attempts.filter((a) => 'error' in a);
    // The kill landed while reads were in flight: those got no answer at all, so no data.
    expect(cut.length).toBeGreaterThan(0);
    for (const a of answered) expect(a.status === 200 || a.status === 503).toBe(true);

    ledger = await startLedger();
    // Every read that did return data has its access entry on the chain.
    const withData = answered.filter((a) => a.body['data'] !== undefined);
    for (const a of withData) {
      const access = a.body['access'] as Receipt;
      expect((await entryAt(access.seq)).body).toMatchObject({ eventId: access.eventId });
      expect(await accessRecord(access)).toMatchObject({ actor: 'dr-x', recordEventId: record.id, decision: 'permit' });
    }
    // And the chain, with whatever the dead ledger left half-done, verifies from genesis.
    const verified = await http(ledger, 'GET', `/v1/chains/${TENANT}/verify`, tokens['auditor'] as string);
    expect(verified.body).toMatchObject({ ok: true });
    expect((await read(record.id, 'purpose=TREAT')).status).toBe(200);
  });

  it('a token of another hospital reads nothing through the gate (403 before consent is even asked)', async () => {
    const other = await auth.token({ tenant: 'hosp-b', roles: ['clinician'], sub: 'dr-b' });
    const record = await clinicalRecord(testPseudonym('dan'), { loinc: '2160-0', creatinine: 80 });
    const asked: unknown[] = [];
    const watch = nc.subscribe(subjects.request('consent.decide'), {
      callback: (_e, m) => {
        asked.push(m.json());
      },
    });
    await nc.flush();
    const r = await http(ledger, 'GET', `/v1/chains/${TENANT}/records/${encodeURIComponent(record.id)}?purpose=TREAT`, other);
    expect(r).toMatchObject({ status: 403, body: { error: 'forbidden', message: 'token is for tenant "hosp-b", not "hosp-a"' } });
    expect(r.body['data']).toBeUndefined();
    // A read that is asked about goes through consent.decide; this one never got that far.
    await nc.flush();
    expect(asked).toEqual([]);
    watch.unsubscribe();
  });

  it('catches up a change whose receipt came while the consent service was down', async () => {
    // The ledger is away: the change is stored on the append stream, the answer is 202 (pending).
    expect(await ledger.stop('SIGTERM')).toBe(0);
    const r = await http(consent, 'POST', '/v1/consents', tokens['admin'] as string, { tenant: TENANT, id: 'carol-1', patient: testPseudonym('carol'), provision: 'permit', roles: ['clinician'] });
    expect(r).toMatchObject({ status: 202, body: { status: 'pending', consent: { consentId: 'carol-1', seq: null } } });
    // The consent service dies before any receipt; the ledger comes back and records the change.
    expect(await consent.stop('SIGKILL')).toBe('SIGKILL');
    ledger = await startLedger();
    const receipt = await eventually(
      async () => (await http(ledger, 'GET', `/v1/chains/${TENANT}/receipts/${r.body['eventId']}`, tokens['auditor'] as string)).status === 200,
      20_000,
      'consent change on the chain',
    ).then(async () => (await http(ledger, 'GET', `/v1/chains/${TENANT}/receipts/${r.body['eventId']}`, tokens['auditor'] as string)).body);
    consent = await spawnService('consent', consentEnv);
    consents.push(consent);
    // The new consent process finds the change still pending, asks the ledger, and projects it.
    await eventually(async () => (await http(consent, 'GET', `/v1/consents/carol-1`, tokens['admin'] as string)).status === 200, 20_000, 'projected');
    const got = await http(consent, 'GET', `/v1/consents/carol-1`, tokens['admin'] as string);
    expect(got.body['consent']).toMatchObject({ consentId: 'carol-1', subject: testPseudonym('carol'), status: 'active', seq: receipt['seq'] });
  });

  // Near the end: the projection is rebuilt from the chain and decisions come back as they were.
  it('rebuilds the consent projection from the chain on demand, undoing damage to it', async () => {
    const list = async (patient: string) => (await http(consent, 'GET', `/v1/consents?patient=${patient}`, tokens['admin'] as string)).body;
    const before = { alice: await list(testPseudonym('alice')), bob: await list(testPseudonym('bob')) };
    const clean = await http(consent, 'POST', '/v1/consent/rebuild', tokens['admin'] as string, { tenant: TENANT });
    expect(clean.status).toBe(200);
    expect(clean.body).toMatchObject({ tenant: TENANT, consentEntries: 7, inserted: 0, replaced: 0, deleted: 0, skipped: [] });

    // Damage: one version lost, one altered (a deny turned permit), one forged.
    const versions = mongo.db(infra.dbName).collection('consent_versions');
    const aliceDeny = before.alice['consents'].find((c: Json) => c.provision === 'deny');
    const bobGrant = before.bob['consents'].find((c: Json) => c.roles.includes('clinician'));
    await versions.deleteOne({ _id: `${TENANT}:${bobGrant.seq}` } as never);
    await versions.updateOne({ _id: `${TENANT}:${aliceDeny.seq}` } as never, { $set: { provision: 'permit' } });
    await versions.insertOne({ ...aliceDeny, _id: `${TENANT}:0`, seq: 0, consentId: 'forged', provision: 'permit', roles: ['nurse'], dataclasses: [] } as never);
    expect((await read(bobRecord, 'purpose=TREAT')).status).toBe(403);

    const sizeBefore = (await http(ledger, 'GET', `/v1/chains/${TENANT}`, tokens['auditor'] as string)).body['size'] as number;
    const r = await http(consent, 'POST', '/v1/consent/rebuild', tokens['admin'] as string, { tenant: TENANT });
    expect(r.body).toMatchObject({ tenant: TENANT, consentEntries: 7, inserted: 1, replaced: 1, deleted: 1 });
    expect({ alice: await list(testPseudonym('alice')), bob: await list(testPseudonym('bob')) }).toEqual(before);
    expect((await read(bobRecord, 'purpose=TREAT')).status).toBe(200);
    // The rebuild read the consent entries through the ledger's gate: each read is on the chain too.
    const sizeAfter = (await http(ledger, 'GET', `/v1/chains/${TENANT}`, tokens['auditor'] as string)).body['size'] as number;
    expect(sizeAfter - sizeBefore).toBeGreaterThanOrEqual(7);
  });

  it('keeps secrets and patient data out of the logs', () => {
    for (const svc of [...ledgers, ...consents]) {
      const out = svc.output();
      for (const t of Object.values(tokens)) expect(out).not.toContain(t);
      expect(out).not.toContain('anticoagulant');
      expect(out).not.toContain('718-7');
    }
  });
});
