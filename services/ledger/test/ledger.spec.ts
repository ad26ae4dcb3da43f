// Long: the ledger's whole behaviour against one running instance (append, dedupe, poison, reads, proofs, consent-gated reads, erasure, key rotation); later tests build on the chain the earlier ones made.
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { jetstream, jetstreamManager, type StoredMsg } from '@nats-io/jetstream';
import { headers, type Subscription } from '@nats-io/transport-node';
import { Binary } from 'mongodb';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consistencyProof, decodeCore, Ed25519Signer, inclusionProof, leafHash, rootAt, toHex } from '@clinical-ledger/chain';
import { AccessRecord, ConsentDecision, ConsentDecisionRequest, EVENT_TYPES, LedgerEvent, Receipt, Subjects } from '@clinical-ledger/contracts';
import { bytes, entryId } from '@clinical-ledger/ledger-store';
import { DEAD_LETTER_HEADERS } from '@clinical-ledger/messaging';
import { eventually, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { consumerBacklog, failures, goVerify, ledgerSpec, openDeadLetter, publish, startConsuming, startInProcess, storedTree } from './helpers';

jest.setTimeout(180_000);

/**
 * The ledger in-process against a real NATS JetStream and a real Mongo wire-protocol server
 * (FerretDB locally). Proofs are checked by the Go verifier (tools/conformance/go), which uses
 * golang.org/x/mod/sumdb and transparency-dev/merkle only.
 */
describe('ledger service (real NATS + Mongo wire server)', () => {
  const w = ledgerSpec('ledger', { keyName: 'test-ledger', ownServers: true });
  let ledger: Awaited<ReturnType<typeof startInProcess>>;
  let consentSub: Subscription | undefined;
  const consentAsked: ConsentDecisionRequest[] = [];
  const consentCallers: string[] = [];

  const env = (extra: Record<string, string> = {}) =>
    w.env({
      LEDGER_MAX_DELIVER: '30',
      LEDGER_NAK_BACKOFF_MS: '200,500,1000',
      // Room for the in-process stand-in on a loaded machine; with none subscribed NATS says so at once (503).
      LEDGER_CONSENT_TIMEOUT_MS: '5000',
      ...extra,
    });

  async function http(path: string, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${ledger.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function requestAs<T>(name: Parameters<Subjects['request']>[0], body: unknown, hdrs?: Record<string, string>): Promise<T> {
    const h = headers();
    for (const [k, v] of Object.entries(hdrs ?? {})) h.set(k, v);
    const msg = await w.nc.request(w.subjects.request(name), JSON.stringify(body), { timeout: 5_000, headers: h });
    return msg.json<T>();
  }

  async function waitForSize(tenant: string, size: number, ms = 60_000): Promise<void> {
    await eventually(async () => ((await w.store.getHead(tenant))?.size ?? 0) >= size, ms, `${tenant} reaches ${size} entries`);
  }

  /** A stand-in for the consent service on consent.decide: permits unless the actor is dr-denied. */
  async function consentUp(): Promise<void> {
    consentSub = w.nc.subscribe(w.subjects.request('consent.decide'), {
      callback: (_e, m) => {
        const req = m.json<ConsentDecisionRequest>();
        consentAsked.push(req);
        consentCallers.push(m.headers?.get('Authorization') ?? '');
        const d: ConsentDecision =
          req.actor === 'dr-denied'
            ? { decision: 'deny', reason: 'patient refused', consentSeq: 0, breakGlass: false }
            : { decision: 'permit', reason: req.breakGlass ? 'break-glass' : 'treatment consent', consentSeq: 0, breakGlass: !!req.breakGlass };
        m.respond(JSON.stringify(d));
      },
    });
    // Until the server has the subscription, the ledger's ask finds no responder (503).
    await w.nc.flush();
  }

  beforeAll(async () => {
    ledger = await startConsuming(env());
  });

  afterAll(async () => {
    consentSub?.unsubscribe();
    await ledger?.close();
    await w.close();
  });

  it('10,000 events with duplicates and redeliveries: exactly 10,000 entries, one chain, every proof valid in Go', async () => {
    const tenant = 'h1';
    const N = 10_000;
    const events = Array.from({ length: N }, (_, i) => testEvent(tenant, { id: `h1:msg-${String(i).padStart(5, '0')}`, subject: testPseudonym(i % 200) }));
    // Published out of order, with 500 resends inside JetStream's dedupe window (same Nats-Msg-Id)
    // and 1,000 resends that get past it (another msg id: the ledger itself must see the duplicate).
    const plan: { e: LedgerEvent; msgID: string }[] = events.map((e) => ({ e, msgID: e.id }));
    for (let i = 0; i < 1_500; i++) {
      const e = events[(i * 7919) % N];
      plan.push({ e, msgID: i < 500 ? e.id : `${e.id}#resend-${i}` });
    }
    for (let i = plan.length - 1; i > 0; i--) {
      const j = (i * 104729 + 13) % (i + 1);
      [plan[i], plan[j]] = [plan[j], plan[i]];
    }
    const send = async (slice: typeof plan) => {
      for (let i = 0; i < slice.length; i += 1_000) await Promise.all(slice.slice(i, i + 1_000).map((p) => publish(w.nc, w.subjects, p.e, 'clinical', p.msgID)));
    };
    const first = plan.slice(0, 4_000);
    const second = plan.slice(4_000, 5_000);
    const rest = plan.slice(5_000);
    await send(first);
    // The store goes away while messages are in flight: appends fail and are retried in hand (an
    // outage uses up no delivery), some after their entry was in fact written.
    const mongoServer = w.infra.mongo;
    if (!mongoServer) throw new Error('this test owns its Mongo server');
    await mongoServer.stop();
    await send(second);
    const consumer = ledger.transport?.consumer('ledger.append');
    await eventually(() => (consumer?.stats.transientRetries ?? 0) > 0, 30_000, 'appends failing while the store is down');
    await mongoServer.start();
    await send(rest);
    await waitForSize(tenant, N, 120_000);
    await eventually(async () => (await consumerBacklog(w.nc, w.subjects)) === 0, 60_000, 'append stream drained');
    expect(consumer?.stats.transientRetries).toBeGreaterThan(0);

    // Exactly the 10,000 events, once each, on one chain.
    const docs = await w.store.entries.find({ chain: tenant }, { projection: { seq: 1, eventId: 1 } }).toArray();
    expect(docs).toHaveLength(N);
    expect(new Set(docs.map((d) => d.eventId))).toEqual(new Set(events.map((e) => e.id)));
    expect(new Set(docs.map((d) => d.seq)).size).toBe(N);
    expect(Math.max(...docs.map((d) => d.seq))).toBe(N - 1);

    // One receipt per entry on ledger.entry.<tenant>, none for the duplicates.
    const jsm = await jetstreamManager(w.nc);
    const entries = await jsm.streams.info(w.subjects.stream('LEDGER_ENTRIES'), { subjects_filter: w.subjects.entry(tenant) });
    expect(entries.state.subjects?.[w.subjects.entry(tenant)]).toBe(N);
    // Nothing went to the dead letters.
    expect((await jsm.streams.info(w.subjects.stream('DEAD_LETTER'))).state.messages).toBe(0);

    // The whole stored chain verifies (links, hashes, signatures, tree nodes, checkpoints).
    await eventually(async () => (await w.store.latestCheckpoint(tenant))?.size === N, 10_000, 'checkpoint at the final size');
    const verified = await http(`/v1/chains/${tenant}/verify`, await w.auth.token({ tenant, roles: ['auditor'] }));
    expect(verified.body).toMatchObject({ ok: true, size: N });
    const checkpoints = await w.store.listCheckpoints(tenant);
    expect((verified.body['checkpointsVerified'] as number[]).length).toBe(checkpoints.length);

    // Every inclusion proof (from the stored tree nodes) and the consistency proofs between all
    // stored checkpoints, verified by the Go verifier against the signed notes.
    const { tree, leaves } = await storedTree(w.store, tenant);
    const latest = checkpoints[checkpoints.length - 1];
    const inclusion = [];
    for (let i = 0; i < N; i++) {
      inclusion.push({ index: i, size: N, leafHash: leaves[i], proof: (await inclusionProof(tree, i, N)).map(toHex), root: latest.rootHash, tree: 0 });
    }
    const consistency = [];
    for (let a = 0; a < checkpoints.length; a++) {
      for (const b of [a + 1, checkpoints.length - 1]) {
        if (b <= a || b >= checkpoints.length) continue;
        const [m, n] = [checkpoints[a].size, checkpoints[b].size];
        consistency.push({ m, n, rootM: checkpoints[a].rootHash, rootN: checkpoints[b].rootHash, proof: (await consistencyProof(tree, m, n)).map(toHex), tree: 0 });
      }
    }
    const origin = `clinical-ledger/${tenant}`;
    const go = goVerify({
      notes: checkpoints.map((c) => ({ vkey: w.keys.signer.verifierKey, note: c.note, origin })),
      trees: [{ leaves }],
      inclusion,
      consistency,
    });
    expect(failures(go.notes)).toEqual([]);
    expect(failures(go.inclusion)).toEqual([]);
    expect(failures(go.consistency)).toEqual([]);
    expect(go.inclusion).toHaveLength(N);
    expect(consistency.length).toBeGreaterThan(0);
    // The checkpoint roots are the roots Go computes over the same leaves.
    expect(toHex(await rootAt(tree, N))).toBe(latest.rootHash);

    // The same proofs over the HTTP API (served from the store, O(log n) reads each).
    const token = await w.auth.token({ tenant, roles: ['auditor'] });
    const apiIncl = [];
    for (const seq of [0, 1, 4321, N - 2, N - 1]) {
      const r = await http(`/v1/chains/${tenant}/proofs/inclusion?seq=${seq}&size=${N}`, token);
      expect(r.status).toBe(200);
      apiIncl.push({ index: seq, size: N, leafHash: r.body['leafHash'] as string, proof: r.body['proof'] as string[], root: latest.rootHash });
    }
    const c = await http(`/v1/chains/${tenant}/proofs/consistency?from=${checkpoints[0].size}&to=${N}`, token);
    const goApi = goVerify({
      inclusion: apiIncl,
      consistency: [{ m: checkpoints[0].size, n: N, rootM: checkpoints[0].rootHash, rootN: latest.rootHash, proof: c.body['proof'] as string[] }],
    });
    expect(failures(goApi.inclusion)).toEqual([]);
    expect(failures(goApi.consistency)).toEqual([]);
    // Its own waits (up to 30 + 120 + 60 + 10 s) beside sending 11,500 messages and verifying 10,000
    // proofs: the file's 180 s cut in first on a loaded machine (125 s alone at load 25), before any
    // of them could say what was missing.
  }, 400_000);

  it('answers the read side over NATS request/reply', async () => {
    const tenant = 'h1';
    // Every request carries the caller's token and is admitted like HTTP (docs/ACCESS-MODEL.md).
    const as = { Authorization: `Bearer ${await w.auth.token({ tenant, roles: ['auditor'] })}` };
    const request = <T>(name: Parameters<Subjects['request']>[0], body: unknown) => requestAs<T>(name, body, as);
    const byEvent = await request<{ seq: number; receipt: Receipt; core: { event: { id: string } } }>('ledger.get.entry', { tenant, eventId: 'h1:msg-00042' });
    expect(byEvent.core.event.id).toBe('h1:msg-00042');
    expect(byEvent.receipt).toMatchObject({ tenant, eventId: 'h1:msg-00042', seq: byEvent.seq });
    const bySeq = await request<{ eventId: string }>('ledger.get.entry', { tenant, seq: byEvent.seq });
    expect(bySeq.eventId).toBe('h1:msg-00042');
    const cp = await request<{ size: number; note: string; rootHash: string }>('ledger.get.checkpoint', { tenant });
    expect(cp.size).toBe(10_000);
    const incl = await request<{ proof: string[]; leafHash: string; size: number; rootHash: string; checkpoint: { note: string } }>('ledger.proof.inclusion', { tenant, eventId: 'h1:msg-00042' });
    // Proofs only between stored checkpoints: the first one the ledger stored, and the last.
    const first = (await w.store.listCheckpoints(tenant))[0];
    const cons = await request<{ proof: string[]; fromRoot: string; toRoot: string }>('ledger.proof.consistency', { tenant, from: first.size, to: 10_000 });
    const go = goVerify({
      notes: [{ vkey: w.keys.signer.verifierKey, note: incl.checkpoint.note, origin: 'clinical-ledger/h1' }],
      inclusion: [{ index: byEvent.seq, size: incl.size, leafHash: incl.leafHash, proof: incl.proof, root: incl.rootHash }],
      consistency: [{ m: first.size, n: 10_000, rootM: cons.fromRoot, rootN: cons.toRoot, proof: cons.proof }],
    });
    expect([...go.notes, ...go.inclusion, ...go.consistency].every((r) => r.ok)).toBe(true);
    expect(await request('ledger.get.entry', { tenant, seq: 99_999 })).toMatchObject({ error: 'not_found', status: 404 });
    expect(await request('ledger.proof.consistency', { tenant, from: 'x' })).toMatchObject({ error: 'invalid_input', status: 400 });
    // No token, another hospital's token, a role the table refuses: the same answers as HTTP.
    expect(await requestAs('ledger.get.entry', { tenant, seq: 1 })).toMatchObject({ error: 'unauthenticated', status: 401 });
    expect(await requestAs('ledger.proof.consistency', { tenant, from: 1, to: 2 })).toMatchObject({ status: 401 });
    const otherHospital = await w.auth.token({ tenant: 'h2', roles: ['auditor'] });
    for (const name of ['ledger.get.entry', 'ledger.get.checkpoint', 'ledger.proof.inclusion', 'ledger.proof.consistency'] as const) {
      expect(await requestAs(name, { tenant, seq: 1, from: 1, to: 2, token: otherHospital })).toMatchObject({ error: 'forbidden', status: 403 });
    }
    const clinician = await w.auth.token({ tenant, roles: ['clinician'] });
    expect(await requestAs('ledger.get.entry', { tenant, seq: 1, token: clinician })).toMatchObject({ error: 'forbidden', status: 403, action: 'ledger.entry.read' });
    expect(await requestAs('ledger.proof.inclusion', { tenant, seq: 1, token: clinician })).toMatchObject({ status: 403 });
    expect(await requestAs('ledger.get.checkpoint', { tenant, token: clinician })).toMatchObject({ size: 10_000 });
  });

  it('refuses HTTP reads without a token or with another hospital\'s token', async () => {
    expect((await http('/v1/chains/h1/checkpoints/latest')).status).toBe(401);
    expect((await http('/v1/chains/h1/checkpoints/latest', await w.auth.token({ tenant: 'h2', roles: ['auditor'] }))).status).toBe(403);
    const keysView = await http('/v1/keys');
    expect(keysView.body['verifierKeys']).toEqual([w.keys.signer.verifierKey]);
    const spec = (await (await fetch(`${ledger.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/v1/chains/{tenant}/proofs/inclusion', '/v1/chains/{tenant}/records/{eventId}']));
  });

  it('moves poison messages to the dead letters with the reason, and keeps appending', async () => {
    const jsm = await jetstreamManager(w.nc);
    const js = jetstream(w.nc);
    const seqOf: Record<string, number> = {};
    const put = async (id: string, body: string) => (seqOf[id] = (await js.publish(w.subjects.append('h9', 'clinical'), body, { msgID: id })).seq);
    await put('poison-1', '{"broken json');
    await put('poison-2', JSON.stringify(testEvent('h8')));
    await put('poison-3', JSON.stringify({ ...testEvent('h9'), time: 'yesterday' }));
    // A consent decision smuggled in as a clinical event (or any of our own types) is refused.
    await put('poison-4', JSON.stringify({ ...testEvent('h9'), type: EVENT_TYPES.consentGranted }));
    await put('poison-5', JSON.stringify({ ...testEvent('h9'), type: 'org.clinical-ledger.anything' }));
    // Text that is not well-formed Unicode, and an identifier where the envelope grammar allows none.
    await put('poison-6', JSON.stringify({ ...testEvent('h9'), type: 'org.example.\ud800' }));
    await put('poison-7', JSON.stringify({ ...testEvent('h9'), source: 'urn:example:MRN00012345' }));
    const good = testEvent('h9');
    await publish(w.nc, w.subjects, good);
    await waitForSize('h9', 1, 20_000);
    const stream = w.subjects.stream('DEAD_LETTER');
    await eventually(async () => (await jsm.streams.info(stream)).state.messages >= 7, 20_000, 'seven dead letters');
    const reasons: Record<string, string> = {};
    for (let seq = 1; seq <= 7; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      const id = Object.keys(seqOf).find((k) => String(seqOf[k]) === m?.header.get(DEAD_LETTER_HEADERS.streamSeq)) ?? '';
      reasons[id] = `${m?.header.get(DEAD_LETTER_HEADERS.reason)}: ${(await openDeadLetter(w.keys.kekFile, m as StoredMsg)).detail}`;
      // Sealed: neither the payload nor the detail is readable without the ledger's KEK.
      expect(m?.header.get(DEAD_LETTER_HEADERS.sealed)).toBe('ledger-kek-v1');
      expect(m?.string()).not.toContain('yesterday');
      // Filed under the tenant and a digest of the patient's pseudonym (none for unparseable JSON).
      expect(m?.subject).toMatch(id === 'poison-1' ? /\.ledger_append\.h9\._$/ : /\.ledger_append\.h9\.[0-9a-f]{32}$/);
    }
    expect(reasons['poison-1']).toMatch(/^invalid_json/);
    expect(reasons['poison-2']).toMatch(/^tenant_mismatch: envelope tenant "h8"/);
    expect(reasons['poison-3']).toMatch(/^invalid_envelope: time/);
    expect(reasons['poison-4']).toMatch(/^category_mismatch: type org.clinical-ledger.consent.granted/);
    expect(reasons['poison-5']).toMatch(/^category_mismatch/);
    expect(reasons['poison-6']).toMatch(/^invalid_envelope: type: is not well-formed Unicode/);
    expect(reasons['poison-7']).toMatch(/^invalid_envelope: source: source must not contain a sequence of 6 or more digits/);
    expect(reasons['poison-7']).not.toContain('00012345');
    expect((await w.store.getEntry('h9', 0))?.eventId).toBe(good.id);
  });

  describe('consent-gated record reads and erasure', () => {
    const tenant = 'h3';
    const alice = testEvent(tenant, { subject: testPseudonym('alice'), data: { hb: 13.2, note: 'alice lab' } });
    const bob = testEvent(tenant, { subject: testPseudonym('bob'), data: { hb: 15.1, note: 'bob lab' } });
    let clinician: string;

    beforeAll(async () => {
      await consentUp();
      clinician = await w.auth.token({ tenant, roles: ['clinician'], sub: 'dr-a' });
      await publish(w.nc, w.subjects, alice);
      await publish(w.nc, w.subjects, bob);
      await waitForSize(tenant, 2);
    });

    it('permits: records the access durably on the chain first, then returns the decrypted payload', async () => {
      const r = await http(`/v1/chains/${tenant}/records/${encodeURIComponent(alice.id)}?purpose=TREAT`, clinician);
      expect(r.status).toBe(200);
      expect(r.body['data']).toEqual(alice.data);
      expect(r.body['decision']).toMatchObject({ decision: 'permit' });
      const access = r.body['access'] as Receipt;
      const entry = await w.store.getEntry(tenant, access.seq);
      const core = decodeCore(bytes(entry?.core as Binary));
      expect(core.event).toMatchObject({ type: EVENT_TYPES.recordAccessed, subject: testPseudonym('alice'), dataclass: 'access', tenant });
      expect(consentAsked.at(-1)).toEqual({ tenant, subject: testPseudonym('alice'), actor: 'dr-a', role: 'clinician', purpose: 'TREAT', dataclass: 'lab' });
      // The ledger asks consent with its own service token (consent admits NATS callers like HTTP).
      expect(consentCallers.at(-1)).toBe(`Bearer ${readFileSync(w.auth.serviceTokenFile, 'utf8')}`);
      // The access entry's own payload is the AccessRecord (read back through the same gate).
      const again = await http(`/v1/chains/${tenant}/records/${encodeURIComponent(access.eventId)}?purpose=TREAT`, clinician);
      expect(again.body['data'] as AccessRecord).toMatchObject({ actor: 'dr-a', role: 'clinician', purpose: 'TREAT', recordEventId: alice.id, decision: 'permit', breakGlass: false });
    });

    it('denies with 403 and the decision, and still records the attempt', async () => {
      const denied = await w.auth.token({ tenant, roles: ['nurse'], sub: 'dr-denied' });
      const before = (await w.store.getHead(tenant))?.size ?? 0;
      const r = await http(`/v1/chains/${tenant}/records/${encodeURIComponent(bob.id)}?purpose=TREAT`, denied);
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({ error: 'consent_denied', decision: { decision: 'deny', reason: 'patient refused' } });
      expect(r.body['data']).toBeUndefined();
      expect((r.body['access'] as Receipt).seq).toBeGreaterThanOrEqual(before);
      const recorded = await w.store.getEntry(tenant, (r.body['access'] as Receipt).seq);
      expect(recorded?.type).toBe(EVENT_TYPES.recordAccessed);
    });

    it('break-glass goes to consent with its reason and is recorded', async () => {
      const r = await http(`/v1/chains/${tenant}/records/${encodeURIComponent(bob.id)}?purpose=ETREAT&breakGlassReason=${encodeURIComponent('unconscious in ER')}`, clinician);
      expect(r.status).toBe(200);
      expect(consentAsked.at(-1)?.breakGlass).toEqual({ reason: 'unconscious in ER' });
      expect(r.body['decision']).toMatchObject({ breakGlass: true });
    });

    it('takes the role from the token only, and binds a patient token to its own pseudonym', async () => {
      const asked = consentAsked.length;
      // A role in the query string is refused, never believed (and nothing is asked or recorded).
      const named = await http(`/v1/chains/${tenant}/records/${encodeURIComponent(alice.id)}?purpose=TREAT&role=clinician`, clinician);
      expect(named).toMatchObject({ status: 400, body: { error: 'invalid_input', errors: [{ field: 'role' }] } });
      // Roles that are not clinical read no records, whatever consent would say.
      for (const roles of [['auditor'], ['admin'], ['integration'], ['registration']]) {
        const t = await w.auth.token({ tenant, roles, sub: 'staff-1' });
        expect(await http(`/v1/chains/${tenant}/records/${encodeURIComponent(alice.id)}?purpose=TREAT`, t)).toMatchObject({ status: 403, body: { error: 'forbidden', action: 'ledger.record.read' } });
      }
      expect(consentAsked.length).toBe(asked);
      // The patient reads its own record (recorded, without a consent decision), never another's.
      const aliceApp = await w.auth.token({ tenant, roles: ['patient'], sub: 'app-alice', patient: testPseudonym('alice') });
      const own = await http(`/v1/chains/${tenant}/records/${encodeURIComponent(alice.id)}?purpose=PATRQT`, aliceApp);
      expect(own).toMatchObject({ status: 200, body: { data: alice.data, decision: { decision: 'permit', consentSeq: null } } });
      expect((await w.store.getEntry(tenant, (own.body['access'] as Receipt).seq))?.type).toBe(EVENT_TYPES.recordAccessed);
      expect(consentAsked.length).toBe(asked);
      expect(await http(`/v1/chains/${tenant}/records/${encodeURIComponent(bob.id)}?purpose=PATRQT`, aliceApp)).toMatchObject({ status: 403, body: { error: 'forbidden' } });
      // Metadata: the patient sees its own entries only; a clinician none.
      const aliceSeq = (await w.store.getEntryByEventId(tenant, alice.id))?.seq as number;
      const bobSeq = (await w.store.getEntryByEventId(tenant, bob.id))?.seq as number;
      expect((await http(`/v1/chains/${tenant}/entries/${aliceSeq}`, aliceApp)).status).toBe(200);
      expect((await http(`/v1/chains/${tenant}/receipts/${encodeURIComponent(alice.id)}`, aliceApp)).status).toBe(200);
      // A proof needs a checkpoint covering alice's entry (409 until the next one is signed).
      await eventually(async () => (await http(`/v1/chains/${tenant}/proofs/inclusion?seq=${aliceSeq}`, aliceApp)).status !== 409, 15_000, 'a checkpoint covering alice');
      expect((await http(`/v1/chains/${tenant}/proofs/inclusion?seq=${aliceSeq}`, aliceApp)).status).toBe(200);
      expect((await http(`/v1/chains/${tenant}/entries/${bobSeq}`, aliceApp)).status).toBe(403);
      expect((await http(`/v1/chains/${tenant}/events/${encodeURIComponent(bob.id)}`, aliceApp)).status).toBe(403);
      expect((await http(`/v1/chains/${tenant}/proofs/inclusion?eventId=${encodeURIComponent(bob.id)}`, aliceApp)).status).toBe(403);
      for (const path of [`entries/${aliceSeq}`, `events/${encodeURIComponent(alice.id)}`, `receipts/${encodeURIComponent(alice.id)}`, 'entries', 'verify']) {
        expect((await http(`/v1/chains/${tenant}/${path}`, clinician)).status).toBe(403);
      }
    });

    it('over NATS (ledger.record.read) with the caller\'s JWT', async () => {
      const request = requestAs;
      const reply = await request<{ data: unknown }>('ledger.record.read', { tenant, eventId: bob.id, purpose: 'TREAT' }, { Authorization: `Bearer ${clinician}` });
      expect(reply.data).toEqual(bob.data);
      expect(await request('ledger.record.read', { tenant, eventId: bob.id, purpose: 'TREAT' })).toMatchObject({ status: 401 });
      const other = await w.auth.token({ tenant: 'h1', roles: ['clinician'] });
      expect(await request('ledger.record.read', { tenant, eventId: bob.id, purpose: 'TREAT', token: other })).toMatchObject({ status: 403 });
      expect(await request('ledger.record.read', { tenant, eventId: bob.id, purpose: 'TREAT', role: 'clinician', token: clinician })).toMatchObject({ status: 400 });
      // The HTTP guard's rules hold on NATS too: a token that never expires is refused.
      const forever = await new SignJWT({ tenant, roles: ['clinician'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('dr-forever')
        .sign(readFileSync(w.auth.secretFile));
      expect(await requestAs('ledger.record.read', { tenant, eventId: bob.id, purpose: 'TREAT', token: forever })).toMatchObject({ status: 401 });
    });

    it('answers 503 and returns nothing when consent does not answer (never a default permit)', async () => {
      consentSub?.unsubscribe();
      await w.nc.flush();
      const before = (await w.store.getHead(tenant))?.size ?? 0;
      const r = await http(`/v1/chains/${tenant}/records/${encodeURIComponent(alice.id)}?purpose=TREAT`, clinician);
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ error: 'consent_unavailable' });
      expect(r.body['data']).toBeUndefined();
      expect((await w.store.getHead(tenant))?.size).toBe(before);
      await consentUp();
    });

    it('erasure destroys the patient key: payload unreadable, chain, proofs and checkpoints still verify', async () => {
      const erasure = testEvent(tenant, { subject: testPseudonym('alice'), type: EVENT_TYPES.patientErased, dataclass: 'erasure', data: { reason: 'GDPR art. 17 request' } });
      const oldKey = (await w.store.getPayload(tenant, alice.id))?.keyId;
      expect(oldKey).toBeDefined();
      await publish(w.nc, w.subjects, erasure, 'erasure');
      await eventually(async () => !!(await w.store.getEntryByEventId(tenant, erasure.id)), 20_000, 'erasure entry');
      const gone = await http(`/v1/chains/${tenant}/records/${encodeURIComponent(alice.id)}?purpose=TREAT`, clinician);
      expect(gone.status).toBe(410);
      expect(gone.body).toMatchObject({ error: 'erased' });
      expect(await w.store.getPayload(tenant, alice.id)).toBeNull();
      // The key is gone (the access just recorded for this read is under a new key of alice's).
      expect(await w.store.dataKeys.countDocuments({ keyId: oldKey })).toBe(0);
      expect(await w.store.payloads.countDocuments({ keyId: oldKey })).toBe(0);
      // Bob is untouched; new data for the same pseudonym gets a new key and is readable.
      expect((await http(`/v1/chains/${tenant}/records/${encodeURIComponent(bob.id)}?purpose=TREAT`, clinician)).body['data']).toEqual(bob.data);
      const later = testEvent(tenant, { subject: testPseudonym('alice'), data: { after: true } });
      await publish(w.nc, w.subjects, later);
      await eventually(async () => !!(await w.store.getEntryByEventId(tenant, later.id)), 20_000, 'later entry');
      expect((await http(`/v1/chains/${tenant}/records/${encodeURIComponent(later.id)}?purpose=TREAT`, clinician)).body['data']).toEqual({ after: true });
      // The erased entry is still on the chain, and everything verifies.
      const auditor = await w.auth.token({ tenant, roles: ['auditor'] });
      const size = (await w.store.getHead(tenant))?.size ?? 0;
      await eventually(async () => (await w.store.latestCheckpoint(tenant))?.size === size, 10_000, 'checkpoint after erasure');
      expect((await http(`/v1/chains/${tenant}/verify`, auditor)).body).toMatchObject({ ok: true, size });
      const entry = await http(`/v1/chains/${tenant}/events/${encodeURIComponent(alice.id)}`, auditor);
      expect(entry.status).toBe(200);
      const incl = await http(`/v1/chains/${tenant}/proofs/inclusion?eventId=${encodeURIComponent(alice.id)}`, auditor);
      const cp = incl.body['checkpoint'] as { note: string };
      const go = goVerify({
        notes: [{ vkey: w.keys.signer.verifierKey, note: cp.note, origin: `clinical-ledger/${tenant}` }],
        inclusion: [{ index: incl.body['seq'] as number, size: incl.body['size'] as number, leafHash: incl.body['leafHash'] as string, proof: incl.body['proof'] as string[], root: incl.body['rootHash'] as string }],
      });
      expect([...go.notes, ...go.inclusion].every((x) => x.ok)).toBe(true);
    });
  });

  it('a stored entry altered in Mongo fails verification, naming that seq', async () => {
    const tenant = 'h4';
    for (let i = 0; i < 300; i += 100) await Promise.all(Array.from({ length: 100 }, () => publish(w.nc, w.subjects, testEvent(tenant))));
    await waitForSize(tenant, 300);
    const auditor = await w.auth.token({ tenant, roles: ['auditor'] });
    expect((await http(`/v1/chains/${tenant}/verify`, auditor)).body).toMatchObject({ ok: true, size: 300 });
    // Change the recorded subject inside entry 123's core bytes.
    const doc = await w.store.entries.findOne({ _id: entryId(tenant, 123) });
    const original = Buffer.from(bytes(doc?.core as Binary));
    const forged = Buffer.from(original.toString('utf8').replace(/"subject":"pseudo:[a-z2-7]+"/, `"subject":"${testPseudonym(999)}"`), 'utf8');
    expect(forged.equals(original)).toBe(false);
    await w.store.entries.updateOne({ _id: entryId(tenant, 123) }, { $set: { core: new Binary(forged) } });
    const bad = await http(`/v1/chains/${tenant}/verify`, auditor);
    expect(bad.body).toMatchObject({ ok: false, failure: { seq: 123, reason: 'LEAF_HASH' } });
    // Forging the leaf hash too does not help: the signature names the seq.
    await w.store.entries.updateOne({ _id: entryId(tenant, 123) }, { $set: { leafHash: new Binary(leafHash(forged)) } });
    const bad2 = await http(`/v1/chains/${tenant}/verify`, auditor);
    expect(bad2.body).toMatchObject({ ok: false, failure: { seq: 123, reason: 'SIGNATURE' } });
    // Restored, and a stored tree node altered instead.
    await w.store.entries.updateOne({ _id: entryId(tenant, 123) }, { $set: { core: new Binary(original), leafHash: doc?.leafHash } });
    const node = await w.store.entries.findOne({ _id: entryId(tenant, 255) });
    const nodes = [...(node?.nodes ?? [])];
    nodes[3] = new Binary(Buffer.alloc(32, 7));
    await w.store.entries.updateOne({ _id: entryId(tenant, 255) }, { $set: { nodes } });
    expect((await http(`/v1/chains/${tenant}/verify`, auditor)).body).toMatchObject({ ok: false, failure: { seq: 255, reason: 'TREE_NODES' } });
  });

  it('rotates the signing key: new entries carry the new kid, old ones still verify', async () => {
    const tenant = 'h5';
    await Promise.all(Array.from({ length: 40 }, () => publish(w.nc, w.subjects, testEvent(tenant))));
    await waitForSize(tenant, 40);
    await eventually(async () => (await w.store.latestCheckpoint(tenant))?.size === 40, 10_000, 'checkpoint at 40');
    await ledger.close();
    const next = Ed25519Signer.generate('test-ledger');
    const newKeyFile = join(w.keys.dir, 'signing-2.key');
    writeFileSync(newKeyFile, next.exportSignerKey());
    const olderFile = join(w.keys.dir, 'older.keys');
    writeFileSync(olderFile, `# rotated out\n${w.keys.signer.verifierKey}\n`);
    ledger = await startInProcess(env({ LEDGER_SIGNING_KEY_FILE: newKeyFile, LEDGER_VERIFIER_KEYS: olderFile }));
    await Promise.all(Array.from({ length: 40 }, () => publish(w.nc, w.subjects, testEvent(tenant))));
    await waitForSize(tenant, 80);
    const kids = (await w.store.entries.find({ chain: tenant }).sort({ seq: 1 }).toArray()).map((d) => d.kid);
    expect(kids.slice(0, 40).every((k) => k === w.keys.signer.kid)).toBe(true);
    expect(kids.slice(40).every((k) => k === next.kid)).toBe(true);
    const auditor = await w.auth.token({ tenant, roles: ['auditor'] });
    await eventually(async () => (await w.store.latestCheckpoint(tenant))?.size === 80, 10_000, 'checkpoint at 80');
    expect((await http(`/v1/chains/${tenant}/verify`, auditor)).body).toMatchObject({ ok: true, size: 80 });
    const published = (await http('/v1/keys')).body;
    expect(published).toMatchObject({ currentKid: next.kid });
    expect(published['verifierKeys']).toEqual(expect.arrayContaining([w.keys.signer.verifierKey, next.verifierKey]));
    // Checkpoints from before and after the rotation verify in Go under their own keys.
    const cps = await w.store.listCheckpoints(tenant);
    const before = cps.find((c) => c.size === 40);
    const after = cps.find((c) => c.size === 80);
    const go = goVerify({
      notes: [
        { vkey: w.keys.signer.verifierKey, note: before?.note ?? '', origin: `clinical-ledger/${tenant}` },
        { vkey: next.verifierKey, note: after?.note ?? '', origin: `clinical-ledger/${tenant}` },
      ],
    });
    expect(failures(go.notes)).toEqual([]);
  });
});
