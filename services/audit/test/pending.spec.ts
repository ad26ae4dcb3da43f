import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Ed25519Signer, signCheckpoint } from '@clinical-ledger/chain';
import { AccessRecord, EVENT_TYPES, LedgerEvent } from '@clinical-ledger/contracts';
import { DEAD_LETTER_HEADERS } from '@clinical-ledger/messaging';
import { type RunningService } from '@clinical-ledger/platform';
import { eventually, ledgerTestKeys, ServiceProcess, spawnService, testAuth, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { randomBytes, randomUUID } from 'node:crypto';
import { auditTestBed, Json, startAuditHere } from './helpers';

/**
 * Accesses announced by a receipt whose entry the audit cannot verify yet (the ledger is away):
 * kept durably as pending (not left to message redelivery), projected once the ledger answers,
 * and never projected when the entry cannot be verified with the auditor's keys. Malformed access
 * receipts go to the dead letters.
 */
const TENANT = 'hosp-p';

describe('audit access projection while the ledger is away', () => {
  const auth = testAuth();
  const keys = ledgerTestKeys('pending-ledger');
  let common: Record<string, string>;
  let audit: RunningService;
  /** A second auditor who was given the wrong key. */
  let misconfigured: RunningService;
  let ledger: ServiceProcess | undefined;
  let token: string;
  const bed = auditTestBed('audit-pending', { closeFirst: () => [audit, misconfigured, ledger] });

  const startAuditWith = (extra: Record<string, string>) =>
    startAuditHere(common, { AUDIT_PENDING_RETRY_MS: '200', AUDIT_MAX_DELIVER: '3', AUDIT_NAK_BACKOFF_MS: '200', ...extra });

  function accessEvent(subject: string, over: Partial<AccessRecord> = {}): LedgerEvent<AccessRecord> {
    return testEvent<AccessRecord>(TENANT, {
      id: `access:${randomUUID()}`,
      source: 'urn:clinical-ledger:ledger',
      type: EVENT_TYPES.recordAccessed,
      subject,
      dataclass: 'access',
      data: { actor: 'dr-y', role: 'nurse', purpose: 'TREAT', recordEventId: 'hosp-p:lab-1', recordSeq: 0, decision: 'deny', reason: 'no applicable consent', consentSeq: null, breakGlass: false, ...over },
    });
  }
  const pendingOf = (subject: string) => bed.mongo.db(bed.infra.dbName).collection('audit_access_pending').countDocuments({ subject });
  const publish = (e: unknown, id: string) => jetstream(bed.nc).publish(bed.subjects.append(TENANT, 'access'), JSON.stringify(e), { msgID: id });
  /** A receipt on `ledger.entry.<tenant>` carrying an access, as the ledger publishes them. */
  const announce = (body: Record<string, unknown>) => jetstream(bed.nc).publish(bed.subjects.entry(TENANT), JSON.stringify(body), { msgID: `test-receipt:${String(body['eventId'])}` });
  const receiptOf = (e: LedgerEvent<AccessRecord>) => ({
    tenant: TENANT,
    seq: 0,
    eventId: e.id,
    leafHash: '00'.repeat(32),
    signature: '',
    kid: 'unknown',
    recordedAt: e.time,
    access: { subject: e.subject, time: e.time, ...e.data },
  });
  const log = async (svc: RunningService, subject: string) =>
    (await (await fetch(`${svc.url}/v1/audit/${TENANT}/patients/${subject}/access`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json;

  beforeAll(async () => {
    common = bed.infra.env({ LOG_LEVEL: 'warn', ...auth.env });
    audit = await startAuditWith({ AUDIT_VERIFIER_KEYS: keys.signer.verifierKey });
    misconfigured = await startAuditWith({ AUDIT_VERIFIER_KEYS: Ed25519Signer.generate('pending-ledger').verifierKey, AUDIT_DURABLE_PREFIX: 'audit-b', AUDIT_COLLECTION_PREFIX: 'auditb_' });
    for (const svc of [audit, misconfigured]) await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 20_000, 'audit ready');
    token = await auth.token({ tenant: TENANT, roles: ['auditor'], sub: 'audit-office' });
  });

  /** Dead letters of the audit consumers, read from the start. */
  async function deadLetters(): Promise<Json[]> {
    const jsm = await jetstreamManager(bed.nc);
    const info = await jsm.streams.info(bed.subjects.stream('DEAD_LETTER')).catch(() => undefined);
    if (!info || info.state.messages === 0) return [];
    const c = await jetstream(bed.nc).consumers.get(bed.subjects.stream('DEAD_LETTER'), { filter_subjects: [bed.subjects.deadLetter('audit')] });
    const out: Json[] = [];
    const pending = (await c.info(true)).num_pending;
    if (pending === 0) return out;
    for await (const m of await c.fetch({ max_messages: pending, expires: 2_000 })) {
      out.push({ reason: m.headers?.get(DEAD_LETTER_HEADERS.reason), detail: m.headers?.get(DEAD_LETTER_HEADERS.detail), consumer: m.headers?.get(DEAD_LETTER_HEADERS.consumer), body: m.json() });
      if (m.info.pending === 0) break;
    }
    return out;
  }

  it('without a ledger to prove consistency, a new checkpoint is retried, then alerted as unverifiable and dead-lettered', async () => {
    const tenant = 'hosp-q';
    const cp = async (size: number) => {
      const rootHash = randomBytes(32);
      const note = await signCheckpoint({ origin: `clinical-ledger/${tenant}`, size, rootHash }, [keys.signer]);
      await jetstream(bed.nc).publish(bed.subjects.checkpoint(tenant), JSON.stringify({ tenant, size, rootHash: rootHash.toString('hex'), note }));
      return note;
    };
    await cp(3); // the first one seen is trusted on first use: no proof needed
    const head = bed.mongo.db(bed.infra.dbName).collection('audit_monitor');
    await eventually(async () => (await head.countDocuments({ _id: tenant as never })) === 1, 10_000, 'first checkpoint trusted');
    const note = await cp(5);
    const alerts = bed.mongo.db(bed.infra.dbName).collection('audit_alerts');
    await eventually(async () => (await alerts.countDocuments({ tenant, kind: 'unverifiable' })) === 1, 15_000, 'unverifiable alert');
    expect(await alerts.findOne({ tenant, kind: 'unverifiable' })).toMatchObject({ severity: 'warning', source: 'stream', checkpoint: { note }, message: expect.stringContaining('ledger.proof.consistency') });
    await eventually(async () => (await deadLetters()).some((d) => d['body']['note'] === note), 10_000, 'dead letter');
    expect((await deadLetters()).find((d) => d['body']['note'] === note)).toMatchObject({ reason: 'max_deliver_exceeded', consumer: 'audit-checkpoints' });
    // Nothing was concluded: the head is still the first checkpoint.
    expect(await head.findOne({ _id: tenant as never })).toMatchObject({ size: 3 });
  });

  it('keeps an announced access pending while no ledger can show its entry, and projects it with its seq once one does', async () => {
    const ev = accessEvent(testPseudonym('carol'));
    await publish(ev, ev.id);
    // Its receipt arrives while no ledger answers (the audit cannot check the entry yet).
    await announce(receiptOf(ev));
    const pending = bed.mongo.db(bed.infra.dbName).collection('audit_access_pending');
    await eventually(async () => (await pending.countDocuments({ eventId: ev.id })) === 1, 10_000, 'pending kept');
    // Looked up again and again (backoff), still not in the log: it is not on any chain.
    await eventually(async () => ((await pending.findOne({ eventId: ev.id }))?.['attempts'] ?? 0) >= 2, 10_000, 'retried');
    expect(await log(audit, testPseudonym('carol'))).toMatchObject({ total: 0, entries: [] });

    ledger = await spawnService('ledger', { ...common, ...keys.ledgerEnv, LEDGER_CHECKPOINT_INTERVAL_MS: '250' });
    await eventually(async () => (await log(audit, testPseudonym('carol')))['total'] === 1, 20_000, 'projected after the ledger appended it');
    const entry = (await log(audit, testPseudonym('carol')))['entries'][0] as Json;
    expect(entry).toMatchObject({ tenant: TENANT, eventId: ev.id, seq: 0, subject: testPseudonym('carol'), actor: 'dr-y', decision: 'deny', kid: keys.signer.kid });
    const onChain = (await (await fetch(`${ledger.url}/v1/chains/${TENANT}/entries/0`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json;
    expect(entry['leafHash']).toBe(onChain['leafHash']);
    expect(await pending.countDocuments({})).toBe(0);
  });

  it('does not project an entry signed by a key the auditor does not trust: one alert per unknown key, kept pending', async () => {
    const b = bed.mongo.db(bed.infra.dbName);
    await eventually(async () => (await b.collection('auditb_alerts').countDocuments({ kind: 'entry_mismatch' })) === 1, 15_000, 'entry_mismatch alert');
    const ev = accessEvent(testPseudonym('dave'));
    await publish(ev, ev.id);
    await eventually(async () => (await log(audit, testPseudonym('dave')))['total'] === 1, 15_000, 'trusted auditor projects it');
    // The misconfigured auditor saw both entries, projected neither, and alerted once for the key.
    await eventually(async () => (await b.collection('auditb_access_pending').countDocuments({ attempts: { $gte: 1 } })) === 2, 15_000, 'both pending');
    expect(await log(misconfigured, testPseudonym('dave'))).toMatchObject({ total: 0 });
    expect(await b.collection('auditb_access').countDocuments({})).toBe(0);
    const alerts = await b.collection('auditb_alerts').find({ kind: 'entry_mismatch' }).toArray();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'critical', source: 'entry', message: expect.stringContaining(`signed by ${keys.signer.kid}, not a configured verifier key`) });
    // Its monitor refuses the ledger's checkpoints for the same reason.
    await eventually(async () => (await b.collection('auditb_alerts').countDocuments({ kind: 'unknown_key' })) >= 1, 15_000, 'unknown_key alert');
    expect(await b.collection('auditb_monitor').countDocuments({})).toBe(0);
  });

  it('dead-letters an access receipt that is not one, with the reason', async () => {
    const ev = accessEvent(testPseudonym('erin'));
    const bad = { ...receiptOf(ev), access: { subject: testPseudonym('erin'), time: ev.time, actor: 'dr-y' } };
    await announce(bad);
    const find = async () => (await deadLetters()).find((d) => d['body']['eventId'] === bad.eventId);
    await eventually(async () => (await find()) !== undefined, 15_000, 'dead letter');
    const found = await find();
    expect(found).toMatchObject({ reason: 'invalid_access_receipt', detail: 'access.role: must be a non-empty string' });
    // Both auditors refuse it; the dead-letter stream keeps one copy of the one message.
    expect(String(found?.['consumer'])).toMatch(/^audit(-b)?-access$/);
    expect(await pendingOf(testPseudonym('erin'))).toBe(0);
  });
});
