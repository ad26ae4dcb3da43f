import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { ACCESS_CSV_COLUMNS, type AlertAck, type ChainOverview, type LedgerEvent, type VerifyJob } from '@clinical-ledger/contracts';
import { eventually, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { auditTestBed, type Json } from './helpers';

/**
 * The console's operations API against the real bed.stack (ledger, consent, audit from dist): the
 * chain overview, verify jobs (a tampered entry fails at its seq), acknowledged alerts on record,
 * dead letters as alerts, a raw identifier looked up without being kept, exports and outliers.
 */
const TENANT = 'hosp-ops';
const AUTHORITY = 'urn:oid:1.2.3.4';

describe('audit operations API', () => {
  const bed = auditTestBed('audit-ops', {
    stack: () => ({
      env: { LEDGER_CHECKPOINT_INTERVAL_MS: '250', CONSENT_DEFAULT: 'deny', AUDIT_OUTLIER_PATIENTS: '3', AUDIT_OUTLIER_DENIALS: '3', AUDIT_POLL_INTERVAL_MS: '0' },
      tenant: TENANT,
      authority: AUTHORITY,
      services: ['ledger', 'consent', 'audit'],
    }),
  });
  const tokens: Record<string, string> = {};
  const records: LedgerEvent[] = [];

  async function http(method: string, path: string, token = tokens['auditor'], body?: unknown, base = bed.stack.svc('audit').url) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: Json = {};
    try {
      json = JSON.parse(text) as Json;
    } catch {
      /* CSV */
    }
    return { status: res.status, type: res.headers.get('content-type') ?? '', disposition: res.headers.get('content-disposition') ?? '', text, body: json };
  }
  const api = (method: string, rest: string, token?: string, body?: unknown) => http(method, `/v1/audit/${TENANT}/${rest}`, token, body);
  const read = (e: LedgerEvent, token = tokens['clinician']) => http('GET', `/v1/chains/${TENANT}/records/${encodeURIComponent(e.id)}?purpose=TREAT`, token, undefined, bed.stack.svc('ledger').url);
  const accessCount = async () => bed.mongo.db(bed.infra.dbName).collection('audit_access').countDocuments({ tenant: TENANT });

  beforeAll(async () => {
    tokens['auditor'] = await bed.stack.auth.token({ tenant: TENANT, roles: ['auditor'], sub: 'privacy-officer' });
    tokens['admin'] = await bed.stack.auth.token({ tenant: TENANT, roles: ['admin'], sub: 'it-admin' });
    tokens['clinician'] = await bed.stack.auth.token({ tenant: TENANT, roles: ['clinician'], sub: 'dr-curious' });
    for (let i = 0; i < 4; i++) {
      const e = testEvent(TENANT, { subject: i === 0 ? bed.stack.patient('MRN-OPS-1') : testPseudonym(`ops-${i}`) });
      records.push(e);
      await jetstream(bed.nc).publish(bed.subjects.append(TENANT, 'clinical'), JSON.stringify(e), { msgID: e.id });
    }
    await eventually(async () => (await http('GET', `/v1/chains/${TENANT}/receipts/${encodeURIComponent((records[3] as LedgerEvent).id)}`, tokens['auditor'], undefined, bed.stack.svc('ledger').url)).status === 200, 20_000, 'records on the chain');
  });

  it('shows the chain: size, the last hour of ingest, verified checkpoint, witnesses, verification state', async () => {
    await eventually(async () => (await api('GET', 'overview')).body['verified'] !== null, 20_000, 'a verified checkpoint');
    const o = (await api('GET', 'overview')).body as ChainOverview;
    expect(o).toMatchObject({ tenant: TENANT, verification: 'ok', witnesses: { quorum: 0, trusted: [] }, deadLetters: 0, lastVerifyJob: null });
    expect(o.size).toBeGreaterThanOrEqual(4);
    expect(o.latestCheckpoint?.size).toBeGreaterThan(0);
    expect(o.ingest.counts).toHaveLength(60);
    expect(o.ingest.bucketMs).toBe(60_000);
    // Every entry so far was recorded within this hour: the per-minute counts add up to the chain's size.
    expect(o.ingest.counts.reduce((a, b) => a + b, 0)).toBe(o.size);
    // What the operators' dashboard plots: read latency by route, and the age of the verified head.
    const metrics = await (await fetch(`${bed.stack.svc('audit').url}/metrics`)).text();
    expect(metrics).toMatch(/^http_request_duration_seconds_count\{[^}]*method="GET",route="\/v1\/audit\/:tenant\/overview",status="200"[^}]*\} [1-9]/m);
    expect(metrics).toMatch(new RegExp(`^audit_monitor_head_verified_time_seconds\\{[^}]*tenant="${TENANT}"[^}]*\\} \\d`, 'm'));
  });

  it('runs a full verification of the chain, and names the entry whose stored signature was altered', async () => {
    const started = await api('POST', 'verify', tokens['auditor'], {});
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ tenant: TENANT, state: 'running', startedBy: 'privacy-officer', checked: 0 });
    const poll = async (id: string) => (await api('GET', `verify/${id}`)).body as VerifyJob;
    await eventually(async () => (await poll(started.body['jobId'])).state !== 'running', 30_000, 'the job finished');
    const ok = await poll(started.body['jobId']);
    expect(ok).toMatchObject({ state: 'ok', checked: started.body['total'] });
    expect(ok.checkpointsMatched).toBeGreaterThan(0);
    expect((await api('GET', 'overview')).body['lastVerifyJob']).toMatchObject({ jobId: ok.jobId, state: 'ok' });

    // Someone with database access rewrites entry 1's signature: the next job stops there.
    const entries = bed.mongo.db(bed.infra.dbName).collection('ledger_entries');
    const doc = (await entries.findOne({ chain: TENANT, seq: 1 })) as Json;
    const forged = Buffer.from(doc['signature'].buffer as Uint8Array);
    forged[0] = (forged[0] as number) ^ 0xff;
    await entries.updateOne({ _id: doc['_id'] }, { $set: { signature: forged } });
    try {
      const again = await api('POST', 'verify', tokens['admin'], {});
      await eventually(async () => (await poll(again.body['jobId'])).state !== 'running', 30_000, 'the second job finished');
      expect(await poll(again.body['jobId'])).toMatchObject({ state: 'failed', failure: { seq: 1, reason: 'SIGNATURE' } });
    } finally {
      await entries.updateOne({ _id: doc['_id'] }, { $set: { signature: doc['signature'] } });
    }
    expect((await api('POST', 'verify', tokens['clinician'], {})).status).toBe(403);
  });

  it('turns a dead letter of the ledger into an alert with its reason; an acknowledgement is recorded once and published', async () => {
    // An envelope the ledger can never append: it is dead-lettered with the reason.
    const bad = { ...testEvent(TENANT), subject: 'not a pseudonym' };
    await jetstream(bed.nc).publish(bed.subjects.append(TENANT, 'clinical'), JSON.stringify(bad), { msgID: bad.id });
    await eventually(async () => ((await api('GET', 'alerts?kind=dead_letter')).body['alerts'] as Json[]).length === 1, 20_000, 'the dead-letter alert');
    const [alert] = (await api('GET', 'alerts?kind=dead_letter')).body['alerts'] as Json[];
    expect(alert).toMatchObject({ type: 'deadletter', kind: 'dead_letter', tenant: TENANT, deadLetter: { reason: expect.any(String), seq: expect.any(Number) } });
    expect(alert?.['message']).toContain(alert?.['deadLetter']['reason']);
    expect((await api('GET', 'overview')).body['deadLetters']).toBe(1);

    const ack = await api('POST', `alerts/${alert?.['alertId']}/ack`, tokens['auditor'], { note: 'bad feed from the lab, told them' });
    expect(ack.status).toBe(201);
    expect(ack.body).toMatchObject({ tenant: TENANT, alertId: alert?.['alertId'], by: 'privacy-officer', roles: ['auditor'], note: 'bad feed from the lab, told them' });
    const twice = await api('POST', `alerts/${alert?.['alertId']}/ack`, tokens['admin'], {});
    expect(twice).toMatchObject({ status: 409, body: { error: 'already_acknowledged', ack: { by: 'privacy-officer' } } });
    expect((await api('POST', 'alerts/nope/ack', tokens['auditor'], {})).status).toBe(404);
    expect((await api('POST', `alerts/${alert?.['alertId']}/ack`, tokens['clinician'], {})).status).toBe(403);
    expect(((await api('GET', 'alerts?kind=dead_letter')).body['alerts'] as Json[])[0]).toMatchObject({ ack: { by: 'privacy-officer' } });
    expect(((await api('GET', 'alerts?open=true')).body['alerts'] as Json[]).some((a) => a['alertId'] === alert?.['alertId'])).toBe(false);
    // On record: the acknowledgement is on the AUDIT stream.
    const jsm = await jetstreamManager(bed.nc);
    const onStream = await jsm.streams.getMessage(bed.subjects.stream('AUDIT'), { last_by_subj: bed.subjects.audit('ack', TENANT) });
    expect(onStream?.json<AlertAck>()).toEqual(ack.body);
  });

  it('finds a patient by a raw identifier without keeping or logging it, and exports their access log as BALP AuditEvents or CSV', async () => {
    const subject = bed.stack.patient('MRN-OPS-1');
    expect((await read(records[0] as LedgerEvent)).status).toBe(403);
    await eventually(async () => (await accessCount()) >= 1, 15_000, 'the access projected');
    const found = await api('POST', 'patients/lookup', tokens['auditor'], { system: AUTHORITY, value: 'MRN-OPS-1' });
    expect(found).toMatchObject({ status: 200, body: { tenant: TENANT, subject, accessCount: 1 } });
    expect((await api('POST', 'patients/lookup', tokens['auditor'], { system: AUTHORITY })).status).toBe(400);
    expect((await api('POST', 'patients/lookup', tokens['clinician'], { system: AUTHORITY, value: 'MRN-OPS-1' })).status).toBe(403);
    expect(bed.stack.svc('audit').output()).not.toContain('MRN-OPS-1');

    const fhir = await api('GET', `patients/${encodeURIComponent(subject)}/access/export?format=fhir`);
    expect(fhir.type).toMatch(/^application\/fhir\+json/);
    expect(fhir.disposition).toMatch(/^attachment; filename="access-hosp-ops-[a-z0-9]+\.json"$/);
    expect(fhir.body).toMatchObject({ resourceType: 'Bundle', type: 'collection' });
    const [ev] = fhir.body['entry'] as Json[];
    // A denied read: BALP's PatientRead profiles successful reads, so this one does not claim it.
    expect(ev?.['resource']).not.toHaveProperty('meta');
    expect(ev?.['resource']).toMatchObject({
      resourceType: 'AuditEvent',
      type: { code: 'rest' },
      action: 'R',
      outcome: '4',
      entity: expect.arrayContaining([expect.objectContaining({ what: { type: 'Patient', identifier: { system: 'urn:clinical-ledger:pseudonym', value: subject } } })]),
    });
    const csv = await api('GET', `patients/${encodeURIComponent(subject)}/access/export?format=csv`);
    expect(csv.type).toMatch(/^text\/csv/);
    const lines = csv.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe(ACCESS_CSV_COLUMNS.join(','));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(',dr-curious,clinician,TREAT,deny,');
    expect((await api('GET', `patients/${encodeURIComponent(subject)}/access/export?format=xml`)).status).toBe(400);
  });

  it("flags an actor's outliers: many patients in a short time, repeated denials", async () => {
    for (const e of records.slice(1)) expect((await read(e)).status).toBe(403);
    await eventually(async () => (await accessCount()) >= 4, 15_000, 'four accesses projected');
    const activity = (await api('GET', 'actors/dr-curious/activity')).body;
    expect(activity).toMatchObject({ actor: 'dr-curious', reads: 4, denied: 4, permitted: 0, patients: 4, roles: ['clinician'] });
    expect(activity['outliers'].map((o: Json) => o['kind']).sort()).toEqual(['many_patients', 'repeated_denials']);
    expect(activity['outliers'].find((o: Json) => o['kind'] === 'many_patients')).toMatchObject({ count: 4, threshold: 3 });
    const summary = (await api('GET', 'activity')).body;
    expect(summary['actors'][0]).toMatchObject({ actor: 'dr-curious', outliers: ['many_patients', 'repeated_denials'] });
    // Someone who read nothing has nothing to flag.
    expect((await api('GET', 'actors/nobody/activity')).body).toMatchObject({ reads: 0, outliers: [] });
  });
});
