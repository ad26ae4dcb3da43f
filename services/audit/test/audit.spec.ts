// Long: one scenario of the audit service beside the real ledger and consent; its tests build on the state the earlier ones left.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Ed25519Signer, fromHex, signCheckpoint, verifyInclusion } from '@clinical-ledger/chain';
import { CheckpointMessage, LedgerEvent, Receipt } from '@clinical-ledger/contracts';
import { type RunningService } from '@clinical-ledger/platform';
import { eventually, ledgerTestKeys, ServiceProcess, spawnService, testAuth, TestAuth, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { randomBytes } from 'node:crypto';
import { auditTestBed, Json, metric, openSse, openWs, SseEvent, startAuditHere } from './helpers';

/**
 * The audit service (in-process) beside the real ledger and consent services (built, spawned) on a
 * real NATS JetStream and a real Mongo wire server: consent-gated reads end up in the access log
 * with their seqs, FHIR AuditEvents point at entries whose inclusion proofs check against the
 * monitor's verified checkpoint, the live stream carries what happens, and the monitor accepts the
 * ledger's genuine checkpoints and alerts on forged ones.
 */
const TENANT = 'hosp-a';
const ORIGIN = `clinical-ledger/${TENANT}`;
const FHIR = 'application/fhir+json';

describe('audit service against the real ledger and consent', () => {
  let auth: TestAuth;
  let ledger: ServiceProcess;
  let consent: ServiceProcess;
  let audit: RunningService;
  const keys = ledgerTestKeys('audit-test-ledger');
  const tokens: Record<string, string> = {};
  let live: { events: SseEvent[]; close(): void };
  let record: LedgerEvent;
  let burst: LedgerEvent[];
  const accessReceipts: Record<string, Receipt> = {};
  const bed = auditTestBed('audit', { closeFirst: () => [live, audit, ledger, consent] });

  async function http(base: string, method: string, path: string, token?: string, body?: unknown, accept?: string) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(accept ? { accept } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: (text ? JSON.parse(text) : undefined) as Json };
  }
  const api = (path: string, token = tokens['auditor'], accept?: string) => http(audit.url, 'GET', `/v1/audit/${TENANT}${path}`, token, undefined, accept);
  const readRecord = (query: string, token = tokens['clinician']) =>
    http(ledger.url, 'GET', `/v1/chains/${TENANT}/records/${encodeURIComponent(record.id)}?${query}`, token);

  async function clinicalRecord(subject: string, data: unknown): Promise<LedgerEvent> {
    const event = testEvent(TENANT, { subject, data });
    await jetstream(bed.nc).publish(bed.subjects.append(TENANT, 'clinical'), JSON.stringify(event), { msgID: event.id });
    return event;
  }

  /** Waits until the audit consumer of LEDGER_ENTRIES has handled everything published so far. */
  async function checkpointsHandled(): Promise<void> {
    const jsm = await jetstreamManager(bed.nc);
    await eventually(async () => {
      const info = await jsm.consumers.info(bed.subjects.stream('LEDGER_ENTRIES'), 'audit-checkpoints');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, 15_000, 'checkpoints handled');
  }

  async function publishCheckpoint(note: string, fields: { size: number; rootHash: string }): Promise<void> {
    const msg: CheckpointMessage = { tenant: TENANT, note, ...fields };
    await jetstream(bed.nc).publish(bed.subjects.checkpoint(TENANT), JSON.stringify(msg), { msgID: `test:${randomBytes(8).toString('hex')}` });
  }

  const alertsOf = async (kind: string) => ((await api('/alerts')).body['alerts'] as Json[]).filter((a) => a['kind'] === kind);

  beforeAll(async () => {
    auth = testAuth();
    const common = bed.infra.env({ LOG_LEVEL: 'warn', ...auth.env });
    [ledger, consent] = await Promise.all([
      spawnService('ledger', { ...common, ...keys.ledgerEnv, LEDGER_CHECKPOINT_INTERVAL_MS: '250' }),
      spawnService('consent', { ...common, CONSENT_DEFAULT: 'deny' }),
    ]);
    audit = await startAuditHere(common, {
      // The auditor's own copy of the ledger's public key: never fetched from the ledger.
      AUDIT_VERIFIER_KEYS: keys.signer.verifierKey,
      AUDIT_PENDING_RETRY_MS: '200',
      AUDIT_NAK_BACKOFF_MS: '200',
    });
    for (const svc of [ledger.url, consent.url, audit.url]) {
      await eventually(async () => (await fetch(`${svc}/readyz`)).status === 200, 30_000, `${svc} ready`);
    }
    tokens['auditor'] = await auth.token({ tenant: TENANT, roles: ['auditor'], sub: 'audit-office' });
    tokens['admin'] = await auth.token({ tenant: TENANT, roles: ['admin'], sub: 'admin-a' });
    tokens['clinician'] = await auth.token({ tenant: TENANT, roles: ['clinician'], sub: 'dr-x' });
    tokens['otherAuditor'] = await auth.token({ tenant: 'hosp-b', roles: ['auditor', 'admin'], sub: 'audit-b' });
    tokens['alice'] = await auth.token({ tenant: TENANT, roles: ['patient'], sub: 'app-alice', patient: testPseudonym('alice') });
    // Watching from the start, as a dashboard would.
    live = await openSse(`${audit.url}/v1/audit/${TENANT}/stream`, tokens['auditor'] as string);

    // A burst of records: appended in one batch, so the chain grows past sizes no checkpoint names.
    burst = await Promise.all(Array.from({ length: 8 }, (_, i) => clinicalRecord(testPseudonym(`p${i}`), { i })));
    record = await clinicalRecord(testPseudonym('alice'), { loinc: '718-7', hb: 13.2 });
    await eventually(async () => (await http(ledger.url, 'GET', `/v1/chains/${TENANT}/receipts/${encodeURIComponent(record.id)}`, tokens['auditor'])).status === 200, 20_000, 'records on the chain');
    expect(burst).toHaveLength(8);
  });


  it('puts a denied and a permitted consent-gated read in the access log, each with its seq on the chain', async () => {
    const denied = await readRecord('purpose=TREAT');
    expect(denied.status).toBe(403);
    accessReceipts['denied'] = denied.body['access'] as Receipt;

    const grant = await http(consent.url, 'POST', '/v1/consents', tokens['admin'], { tenant: TENANT, patient: testPseudonym('alice'), provision: 'permit', roles: ['clinician'], purposes: ['TREAT'], dataclasses: ['lab'] });
    expect(grant.status).toBe(201);
    const permitted = await readRecord('purpose=TREAT');
    expect(permitted.status).toBe(200);
    accessReceipts['permitted'] = permitted.body['access'] as Receipt;

    await eventually(async () => (await api(`/patients/${testPseudonym('alice')}/access`)).body['total'] === 2, 15_000, 'two accesses projected');
    const log = (await api(`/patients/${testPseudonym('alice')}/access`)).body;
    expect(log).toMatchObject({ tenant: TENANT, subject: testPseudonym('alice'), total: 2, next: null });
    // Newest first; each names its access entry exactly as the ledger's receipt does.
    expect(log['entries']).toEqual([
      expect.objectContaining({
        seq: accessReceipts['permitted']?.seq,
        eventId: accessReceipts['permitted']?.eventId,
        leafHash: accessReceipts['permitted']?.leafHash,
        subject: testPseudonym('alice'),
        actor: 'dr-x',
        role: 'clinician',
        purpose: 'TREAT',
        recordEventId: record.id,
        decision: 'permit',
        consentSeq: grant.body['receipt'].seq,
        breakGlass: false,
      }),
      expect.objectContaining({
        seq: accessReceipts['denied']?.seq,
        leafHash: accessReceipts['denied']?.leafHash,
        actor: 'dr-x',
        decision: 'deny',
        reason: 'no applicable consent: hospital default is deny',
        consentSeq: null,
      }),
    ]);
    // The same entries from the actor's side; nothing for someone who read nothing.
    const byActor = (await api('/actors/dr-x/access')).body;
    expect(byActor['entries'].map((e: Json) => e['seq'])).toEqual([accessReceipts['permitted']?.seq, accessReceipts['denied']?.seq]);
    expect((await api('/actors/nobody/access')).body).toMatchObject({ total: 0, entries: [] });
    // Paging: one at a time, newest first.
    const page1 = (await api(`/patients/${testPseudonym('alice')}/access?limit=1`)).body;
    expect(page1).toMatchObject({ total: 2, next: accessReceipts['permitted']?.seq });
    const page2 = (await api(`/patients/${testPseudonym('alice')}/access?limit=1&before=${page1['next']}`)).body;
    expect(page2['entries'].map((e: Json) => e['seq'])).toEqual([accessReceipts['denied']?.seq]);
    expect((await api(`/patients/${testPseudonym('alice')}/access?limit=0`)).status).toBe(400);
  });

  it('projects a break-glass read, and consent’s break-glass alert, with the free-text reason on neither', async () => {
    const reason = 'unconscious in the ED';
    const r = await readRecord(`purpose=ETREAT&breakGlassReason=${encodeURIComponent(reason)}`);
    expect(r.status).toBe(200);
    accessReceipts['breakGlass'] = r.body['access'] as Receipt;
    await eventually(async () => (await api(`/patients/${testPseudonym('alice')}/access`)).body['total'] === 3, 15_000, 'break-glass access projected');
    expect((await api(`/patients/${testPseudonym('alice')}/access?limit=1`)).body['entries'][0]).toMatchObject({
      seq: accessReceipts['breakGlass'].seq,
      purpose: 'ETREAT',
      decision: 'permit',
      breakGlass: true,
    });
    await eventually(async () => (await alertsOf('breakglass')).length === 1, 10_000, 'break-glass alert stored');
    expect((await alertsOf('breakglass'))[0]).toMatchObject({ type: 'breakglass', severity: 'warning', tenant: TENANT, subject: testPseudonym('alice'), actor: 'dr-x', purpose: 'ETREAT' });
    // The reason travels on no stream in plain text: it is in the (encrypted) access entry only.
    expect(JSON.stringify((await api(`/patients/${testPseudonym('alice')}/access?limit=1`)).body)).not.toContain(reason);
    expect(JSON.stringify(await alertsOf('breakglass'))).not.toContain(reason);
  });

  it("shows consent's refusals: a clinician granting itself access is refused, alerted, and listed with the tenant's alerts", async () => {
    const selfGrant = await http(consent.url, 'POST', '/v1/consents', tokens['clinician'], { tenant: TENANT, patient: testPseudonym('alice'), provision: 'permit', status: 'active' });
    expect(selfGrant).toMatchObject({ status: 403, body: { error: 'forbidden', action: 'consent.change' } });
    await eventually(async () => (await alertsOf('access_refused')).length >= 1, 10_000, 'refusal alert stored');
    expect((await alertsOf('access_refused'))[0]).toMatchObject({ tenant: TENANT, severity: 'warning', source: 'consent', refused: { actor: 'dr-x', roles: ['clinician'], action: 'consent.change' } });
    // The refusal stays a refusal: the clinician still reads nothing it was denied before.
    expect((await http(consent.url, 'GET', `/v1/consents?tenant=${TENANT}&patient=${testPseudonym('alice')}`, tokens['admin'])).body['consents'].some((c: Json) => c['recordedBy'] === 'dr-x')).toBe(false);
  });

  it('renders FHIR R4 AuditEvents that point at the access entries, whose inclusion proofs check against the verified checkpoint', async () => {
    const res = await api(`/patients/${testPseudonym('alice')}/access`, tokens['auditor'], FHIR);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^application\/fhir\+json/);
    const bundle = res.body;
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 3, link: [{ relation: 'self', url: `/v1/audit/${TENANT}/patients/${testPseudonym('alice')}/access` }] });
    expect(bundle['entry']).toHaveLength(3);
    for (const e of bundle['entry']) {
      expect(e.fullUrl).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(e.search).toEqual({ mode: 'match' });
    }
    const [breakGlass, permitted, denied] = bundle['entry'].map((e: Json) => e['resource']) as Json[];
    expect(denied).toMatchObject({
      resourceType: 'AuditEvent',
      id: `${TENANT}-${accessReceipts['denied']?.seq}`,
      type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110110' },
      subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
      action: 'R',
      recorded: accessReceipts['denied']?.recordedAt,
      outcome: '4',
      outcomeDesc: 'denied: no applicable consent: hospital default is deny',
      purposeOfEvent: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }] }],
      agent: [{ who: { identifier: { system: 'urn:clinical-ledger:actor', value: 'dr-x' } }, role: [{ coding: [{ code: 'clinician' }] }], requestor: true }],
      source: { site: TENANT },
      entity: [
        { what: { identifier: { system: 'urn:clinical-ledger:pseudonym', value: testPseudonym('alice') } }, role: { code: '1' } },
        { what: { identifier: { system: 'urn:clinical-ledger:event', value: record.id } } },
        { what: { identifier: { system: 'urn:clinical-ledger:entry', value: `${TENANT}:${accessReceipts['denied']?.seq}` } } },
      ],
    });
    expect(denied['agent'][0]['policy']).toBeUndefined();
    expect(permitted).toMatchObject({ outcome: '0', agent: [{ policy: [expect.stringMatching(new RegExp(`^urn:clinical-ledger:entry:${TENANT}:\\d+$`))] }] });
    expect(breakGlass['purposeOfEvent'].map((p: Json) => p['coding'][0]['code'])).toEqual(['ETREAT', 'BTG']);
    // No raw patient data anywhere: only the pseudonym names the patient.
    expect(JSON.stringify(bundle)).not.toContain('13.2');

    // An auditor takes (tenant, seq, leaf hash) from the AuditEvent to the ledger and checks the
    // proof against the checkpoint the monitor verified independently.
    const detail = (r: Json) => Object.fromEntries((r['entity'][2]['detail'] as Json[]).map((d) => [d['type'], d['valueString']]));
    await eventually(async () => {
      const head = await api('/checkpoints/latest');
      return head.status === 200 && head.body['size'] > Number(detail(breakGlass)['seq']);
    }, 15_000, 'a verified checkpoint covering the accesses');
    const head = (await api('/checkpoints/latest')).body;
    for (const r of [denied, permitted, breakGlass]) {
      const d = detail(r);
      const proof = await http(ledger.url, 'GET', `${d['inclusionProof']}&size=${head['size']}`, tokens['auditor']);
      expect(proof.status).toBe(200);
      verifyInclusion(Number(d['seq']), head['size'], fromHex(d['leafHash'], 32), (proof.body['proof'] as string[]).map((h) => fromHex(h, 32)), fromHex(head['rootHash'], 32));
    }
  });

  it('streams receipts, checkpoints, verified checkpoints, access events and alerts over SSE; only to the token’s hospital', async () => {
    await eventually(() => new Set(live.events.map((e) => e.event)).size >= 6, 10_000, 'every kind of live event');
    const kinds = (k: string) => live.events.filter((e) => e.event === k).map((e) => e.data);
    expect(kinds('hello')).toEqual([{ type: 'hello', tenant: TENANT, types: ['receipt', 'checkpoint', 'access', 'alert', 'verified', 'ack', 'verify'], recent: 0 }]);
    expect(kinds('receipt')).toContainEqual(expect.objectContaining({ tenant: TENANT, eventId: record.id }));
    expect(kinds('receipt')).toContainEqual(expect.objectContaining(accessReceipts['denied']));
    expect(kinds('checkpoint')).toContainEqual(expect.objectContaining({ tenant: TENANT, size: expect.any(Number), note: expect.stringContaining(ORIGIN) }));
    expect(kinds('verified')).toContainEqual(expect.objectContaining({ tenant: TENANT, signedBy: [keys.signer.kid] }));
    expect(kinds('access').map((a) => a['seq'])).toEqual(expect.arrayContaining([accessReceipts['denied']?.seq, accessReceipts['permitted']?.seq]));
    expect(kinds('alert')).toContainEqual(expect.objectContaining({ subject: testPseudonym('alice'), actor: 'dr-x' }));

    // Another hospital's token cannot open this tenant's stream, and its own stream stays silent.
    const refused = await openSse(`${audit.url}/v1/audit/${TENANT}/stream`, tokens['otherAuditor'] as string);
    expect(refused.status).toBe(403);
    const other = await openSse(`${audit.url}/v1/audit/hosp-b/stream?types=receipt,access`, tokens['otherAuditor'] as string);
    expect(other.status).toBe(200);
    const receipts = kinds('receipt').length;
    await clinicalRecord(testPseudonym('alice'), { more: true });
    await eventually(() => kinds('receipt').length > receipts, 10_000, 'one more receipt');
    other.close();
    expect(other.events).toEqual([{ event: 'hello', data: { type: 'hello', tenant: 'hosp-b', types: ['receipt', 'access'], recent: 0 } }]);
  });

  describe('the checkpoint monitor', () => {
    let head: Json;
    const random = () => randomBytes(32);

    beforeAll(async () => {
      await checkpointsHandled();
      // Settle: the ledger checkpoints the last record, and the monitor verifies it.
      await eventually(async () => {
        const chain = await http(ledger.url, 'GET', `/v1/chains/${TENANT}`, tokens['auditor']);
        const h = await api('/checkpoints/latest');
        return h.status === 200 && h.body['size'] === chain.body['size'];
      }, 15_000, 'the monitor caught up with the chain');
      head = (await api('/checkpoints/latest')).body;
    });

    it('verified every genuine checkpoint (signature, origin, consistency) and raised no monitor alert', async () => {
      const { checkpoints } = (await api('/checkpoints?limit=1000')).body as { checkpoints: Json[] };
      expect(checkpoints.length).toBeGreaterThan(1);
      expect(checkpoints[0]).toMatchObject({ size: head['size'], rootHash: head['rootHash'], signedBy: [keys.signer.kid] });
      // The first one was trusted on first use; every later one was proven consistent with a verified one.
      expect(checkpoints.filter((c) => c['consistentWith'] === null)).toHaveLength(1);
      expect((await api('/alerts')).body['alerts'].filter((a: Json) => a['type'] === 'monitor')).toEqual([]);
      const status = (await api('/monitor')).body;
      expect(status).toMatchObject({ tenant: TENANT, head: { size: head['size'], rootHash: head['rootHash'] }, verifiedCheckpoints: checkpoints.length, pendingAccess: 0 });
      const metrics = await (await fetch(`${audit.url}/metrics`)).text();
      expect(metric(metrics, 'audit_checkpoints_verified_total', { tenant: TENANT })).toBe(checkpoints.length);
      expect(metric(metrics, 'audit_alerts_total')).toBe(0);
      expect(metric(metrics, 'audit_monitor_head_size', { tenant: TENANT })).toBe(head['size']);
    });

    /** The ledger's largest stored checkpoint below the head (stored, published and verified here). */
    async function olderStored(): Promise<Json> {
      return (await bed.mongo.db(bed.infra.dbName).collection('ledger_checkpoints').find({ chain: TENANT, size: { $lt: head['size'] } }).sort({ size: -1 }).limit(1).next()) as Json;
    }
    /** Makes the monitor forget it verified that size (as if it had missed the message); returns the restore. */
    async function forget(size: number): Promise<() => Promise<void>> {
      const verified = bed.mongo.db(bed.infra.dbName).collection<Json>('audit_checkpoints');
      const doc = await verified.findOne({ _id: `${TENANT}:${size}` } as Json);
      expect(doc).not.toBeNull();
      await verified.deleteOne({ _id: `${TENANT}:${size}` } as Json);
      return async () => {
        await verified.deleteOne({ _id: `${TENANT}:${size}` } as Json);
        await verified.insertOne(doc as Json);
      };
    }

    it('verifies a genuine checkpoint it has not seen, of an older size, by its consistency with the head', async () => {
      // One of the ledger's own stored checkpoints the monitor missed (proofs exist only between stored ones).
      const older = await olderStored();
      const restore = await forget(older['size']);
      try {
        await publishCheckpoint(older['note'], { size: older['size'], rootHash: older['rootHash'] });
        await eventually(async () => ((await api('/checkpoints?limit=1000')).body['checkpoints'] as Json[]).some((c) => c['size'] === older['size']), 10_000, 'older checkpoint verified');
        const stored = ((await api('/checkpoints?limit=1000')).body['checkpoints'] as Json[]).find((c) => c['size'] === older['size']);
        expect(stored).toMatchObject({ rootHash: older['rootHash'], consistentWith: head['size'] });
        expect((await api('/checkpoints/latest')).body).toMatchObject({ size: head['size'], rootHash: head['rootHash'] });
      } catch (err) {
        await restore();
        throw err;
      }
    });

    const forgeries: [string, string, () => Promise<{ note: string; size: number; rootHash: string }>][] = [
      [
        'signed by a key the auditor does not trust (same key name)',
        'unknown_key',
        async () => {
          const size = head['size'] + 1;
          const root = random();
          return { note: await signCheckpoint({ origin: ORIGIN, size, rootHash: root }, [Ed25519Signer.generate(keys.signer.name)]), size, rootHash: root.toString('hex') };
        },
      ],
      [
        'the genuine head note with its root hash replaced',
        'bad_signature',
        async () => {
          const root = random();
          const lines = (head['note'] as string).split('\n');
          lines[2] = root.toString('base64');
          return { note: lines.join('\n'), size: head['size'], rootHash: root.toString('hex') };
        },
      ],
      [
        'validly signed, same size as the verified head, another root (split view)',
        'fork',
        async () => {
          const root = random();
          return { note: await signCheckpoint({ origin: ORIGIN, size: head['size'], rootHash: root }, [keys.signer]), size: head['size'], rootHash: root.toString('hex') };
        },
      ],
      [
        'validly signed, an older size the ledger has a checkpoint of (the monitor missed it), a root the verified tree does not extend',
        'inconsistent',
        async () => {
          const size = (await olderStored())['size'] as number;
          restoreAfter = await forget(size);
          const root = random();
          return { note: await signCheckpoint({ origin: ORIGIN, size, rootHash: root }, [keys.signer]), size, rootHash: root.toString('hex') };
        },
      ],
      [
        'validly signed, a size below the head the ledger has no checkpoint of (it proves only between stored ones)',
        'unprovable',
        async () => {
          const stored = new Set((await bed.mongo.db(bed.infra.dbName).collection('ledger_checkpoints').find({ chain: TENANT }).toArray()).map((c) => c['size']));
          const size = Array.from({ length: head['size'] - 1 }, (_, i) => i + 1).find((s) => !stored.has(s)) as number;
          const root = random();
          return { note: await signCheckpoint({ origin: ORIGIN, size, rootHash: root }, [keys.signer]), size, rootHash: root.toString('hex') };
        },
      ],
      [
        'validly signed, a size the ledger does not have',
        'unprovable',
        async () => {
          const size = head['size'] + 1_000;
          const root = random();
          return { note: await signCheckpoint({ origin: ORIGIN, size, rootHash: root }, [keys.signer]), size, rootHash: root.toString('hex') };
        },
      ],
      [
        'validly signed for another hospital’s log',
        'malformed_checkpoint',
        async () => {
          const root = random();
          return { note: await signCheckpoint({ origin: 'clinical-ledger/hosp-b', size: head['size'] + 1, rootHash: root }, [keys.signer]), size: head['size'] + 1, rootHash: root.toString('hex') };
        },
      ],
    ];

    let restoreAfter: (() => Promise<void>) | undefined;
    afterEach(async () => {
      await restoreAfter?.();
      restoreAfter = undefined;
    });

    it.each(forgeries)('alerts on a checkpoint %s (%s) published on ledger.checkpoint.<tenant>', async (_, kind, forge) => {
      const forged = await forge();
      const before = live.events.length;
      const prior = (await alertsOf(kind)).length;
      await publishCheckpoint(forged.note, { size: forged.size, rootHash: forged.rootHash });
      await eventually(async () => (await alertsOf(kind)).length === prior + 1, 10_000, `${kind} alert`);
      const alert = (await alertsOf(kind)).find((a) => a['checkpoint']?.['note'] === forged.note);
      expect(alert).toMatchObject({ type: 'monitor', tenant: TENANT, kind, severity: 'critical', source: 'stream', checkpoint: { note: forged.note } });
      // Announced on audit.alert.<tenant> (the dashboard's stream shows it) and counted.
      await eventually(() => live.events.slice(before).some((e) => e.event === 'alert' && e.data['alertId'] === alert?.['alertId']), 10_000, 'alert on the live stream');
      const metrics = await (await fetch(`${audit.url}/metrics`)).text();
      expect(metric(metrics, 'audit_alerts_total', { tenant: TENANT, kind })).toBe(prior + 1);
      // The trusted head did not move.
      expect((await api('/checkpoints/latest')).body).toMatchObject({ size: head['size'], rootHash: head['rootHash'] });
      // The same forgery again is the same alert, not a new one.
      await publishCheckpoint(forged.note, { size: forged.size, rootHash: forged.rootHash });
      await checkpointsHandled();
      expect(await alertsOf(kind)).toHaveLength(prior + 1);
    });

    it('notices the ledger’s latest checkpoint going backwards (polled), while a late genuine message on the stream is no alarm', async () => {
      // One of the ledger's own older checkpoints (stored by it, published, verified here).
      const older = (await bed.mongo
        .db(bed.infra.dbName)
        .collection('ledger_checkpoints')
        .find({ chain: TENANT, size: { $lt: head['size'] } })
        .sort({ size: -1 })
        .limit(1)
        .next()) as Json;
      expect(((await api('/checkpoints?limit=1000')).body['checkpoints'] as Json[]).map((c) => c['size'])).toContain(older['size']);
      // A redelivered or late genuine checkpoint: known, consistent, nothing to report.
      await publishCheckpoint(older['note'], { size: older['size'], rootHash: older['rootHash'] });
      await checkpointsHandled();
      expect(await alertsOf('size_regressed')).toEqual([]);
      expect((await http(audit.url, 'POST', `/v1/audit/${TENANT}/monitor/poll`, tokens['auditor'])).body).toMatchObject({ tenant: TENANT, outcome: 'known', size: head['size'] });

      // Someone rolls the ledger's store back to an older checkpoint.
      const heads = bed.mongo.db(bed.infra.dbName).collection<{ _id: string; checkpointSize: number }>('ledger_heads');
      await heads.updateOne({ _id: TENANT }, { $set: { checkpointSize: older['size'] } });
      try {
        const polled = await http(audit.url, 'POST', `/v1/audit/${TENANT}/monitor/poll`, tokens['auditor']);
        expect(polled.status).toBe(200);
        expect(polled.body).toMatchObject({ outcome: 'alert', alert: { kind: 'size_regressed', severity: 'critical', source: 'poll', checkpoint: { size: older['size'] }, previous: { size: head['size'] } } });
        expect(await alertsOf('size_regressed')).toHaveLength(1);
      } finally {
        await heads.updateOne({ _id: TENANT }, { $max: { checkpointSize: head['size'] } });
      }
    });
  });

  describe('access control', () => {
    const paths = [`/patients/${testPseudonym('alice')}/access`, '/actors/dr-x/access', '/stream', '/checkpoints/latest', '/checkpoints', '/alerts', '/monitor'];

    it.each(paths)('GET %s: 403 for another hospital’s token, 401 without one', async (path) => {
      const ctl = new AbortController();
      const other = await fetch(`${audit.url}/v1/audit/${TENANT}${path}`, { headers: { authorization: `Bearer ${tokens['otherAuditor']}` }, signal: ctl.signal });
      expect(other.status).toBe(403);
      expect(await other.json()).toMatchObject({ error: 'forbidden', message: 'token is for tenant "hosp-b", not "hosp-a"' });
      const none = await fetch(`${audit.url}/v1/audit/${TENANT}${path}`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
    });

    it('a patient reads only their own access log; a clinician reads none', async () => {
      const own = await api(`/patients/${testPseudonym('alice')}/access`, tokens['alice'], FHIR);
      expect(own.status).toBe(200);
      expect(own.body['total']).toBe(3);
      expect((await api(`/patients/${testPseudonym('bob')}/access`, tokens['alice'])).status).toBe(403);
      expect((await api('/actors/dr-x/access', tokens['alice'])).status).toBe(403);
      expect((await api(`/patients/${testPseudonym('alice')}/access`, tokens['clinician'])).status).toBe(403);
      expect((await http(audit.url, 'POST', `/v1/audit/${TENANT}/monitor/poll`, tokens['clinician'])).status).toBe(403);
    });
  });

  it('serves the dashboard page without a token, under a CSP that admits only its own script', async () => {
    const res = await fetch(`${audit.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-[A-Za-z0-9+/=]+'; connect-src 'self'/);
    const html = await res.text();
    expect(html).toContain('clinical-ledger audit');
    expect(html).toContain('sessionStorage');
    expect(html).not.toMatch(/innerHTML/);
  });

  it('left no access event waiting: each one met its entry on the chain', async () => {
    expect(await bed.mongo.db(bed.infra.dbName).collection('audit_access_pending').countDocuments({})).toBe(0);
    expect(await bed.mongo.db(bed.infra.dbName).collection('audit_access').countDocuments({ tenant: TENANT })).toBe(3);
  });

  it("streams a patient their own accesses: the recent ones on connect, then each new one; never another patient's", async () => {
    const alice = testPseudonym('alice');
    const path = `/v1/audit/${TENANT}/patients/${encodeURIComponent(alice)}/access/stream`;
    const mine = await openSse(`${audit.url}${path}`, tokens['alice'] as string);
    expect(mine.status).toBe(200);
    const accesses = () => mine.events.filter((e) => e.event === 'access').map((e) => e.data);
    await eventually(() => accesses().length === 3, 10_000, 'the three recorded accesses, sent on connect');
    expect(mine.events[0]).toEqual({ event: 'hello', data: { type: 'hello', tenant: TENANT, patient: alice, types: ['access'], recent: 3 } });
    // Oldest first, each marked as the recent past.
    expect(accesses().map((a) => a['seq'])).toEqual([accessReceipts['denied']?.seq, accessReceipts['permitted']?.seq, accessReceipts['breakGlass']?.seq]);
    expect(accesses().every((a) => a['recent'] === true && a['subject'] === alice)).toBe(true);

    // Another patient's record read first, then alice's: only alice's reaches her stream, live.
    const other = await http(ledger.url, 'GET', `/v1/chains/${TENANT}/records/${encodeURIComponent((burst[0] as LedgerEvent).id)}?purpose=TREAT`, tokens['clinician']);
    expect(other.status).toBe(403);
    const again = await readRecord('purpose=TREAT');
    expect(again.status).toBe(200);
    await eventually(() => accesses().length === 4, 10_000, "alice's new access, live");
    expect(accesses()[3]).toMatchObject({ seq: (again.body['access'] as Receipt).seq, subject: alice, actor: 'dr-x', decision: 'permit' });
    expect(accesses()[3]?.['recent']).toBeUndefined();
    await eventually(async () => (await api(`/patients/${encodeURIComponent(testPseudonym('p0'))}/access`)).body['total'] === 1, 10_000, "the other patient's access projected");
    expect(accesses()).toHaveLength(4);
    mine.close();

    // Another patient's token, a clinician's, another hospital's: 403.
    const bob = await auth.token({ tenant: TENANT, roles: ['patient'], sub: 'app-bob', patient: testPseudonym('bob') });
    for (const t of [bob, tokens['clinician'], tokens['otherAuditor']]) expect((await openSse(`${audit.url}${path}`, t as string)).status).toBe(403);
  });

  it('serves the same live streams over WebSocket, the token in the first message: the recent past, then live; refusals close with 4000 + status', async () => {
    const alice = testPseudonym('alice');
    const mine = await openWs(audit.url, { token: tokens['alice'], tenant: TENANT, patient: alice });
    await eventually(() => mine.messages.filter((m) => m['type'] === 'access').length === 4, 10_000, "alice's four accesses over WebSocket");
    expect(mine.messages[0]).toEqual({ type: 'hello', tenant: TENANT, patient: alice, types: ['access'], recent: 4 });
    expect(mine.messages.slice(1).every((m) => m['recent'] === true && m['data']['subject'] === alice)).toBe(true);
    const staff = await openWs(audit.url, { token: tokens['auditor'], tenant: TENANT, types: ['receipt'] });
    await eventually(() => staff.messages.length > 1, 10_000, 'hello and recent receipts');
    expect(staff.messages[0]).toMatchObject({ type: 'hello', tenant: TENANT, types: ['receipt'] });
    const recent = staff.messages.length;

    const again = await readRecord('purpose=TREAT');
    expect(again.status).toBe(200);
    const seq = (again.body['access'] as Receipt).seq;
    await eventually(() => mine.messages.some((m) => m['data']?.['seq'] === seq), 10_000, 'the new access, live');
    expect(mine.messages.find((m) => m['data']?.['seq'] === seq)).toEqual({ type: 'access', data: expect.objectContaining({ seq, subject: alice, decision: 'permit' }) });
    await eventually(() => staff.messages.slice(recent).some((m) => m['type'] === 'receipt' && m['data']['seq'] === seq), 10_000, "the access entry's receipt, live");
    expect(staff.messages.every((m) => m['type'] === 'hello' || m['type'] === 'receipt')).toBe(true);
    mine.close();
    staff.close();

    const bob = await auth.token({ tenant: TENANT, roles: ['patient'], sub: 'app-bob', patient: testPseudonym('bob') });
    const refusals: [unknown, number, string][] = [
      [{ token: bob, tenant: TENANT, patient: alice }, 4403, 'forbidden'],
      [{ token: bob, tenant: TENANT }, 4403, 'forbidden'],
      [{ token: tokens['otherAuditor'], tenant: TENANT }, 4403, 'forbidden'],
      [{ token: 'not-a-jwt', tenant: TENANT }, 4401, 'invalid_token'],
      [{ tenant: TENANT }, 4401, 'unauthenticated'],
      [{ token: tokens['auditor'], tenant: TENANT, types: ['nonsense'] }, 4400, 'invalid_input'],
      ['hello', 4400, 'invalid_input'],
    ];
    for (const [sub, code, error] of refusals) {
      const ws = await openWs(audit.url, sub);
      expect(await ws.closed).toEqual({ code, reason: error });
      expect(ws.messages).toEqual([expect.objectContaining({ type: 'refused', status: code - 4000, error })]);
    }
  });
});
