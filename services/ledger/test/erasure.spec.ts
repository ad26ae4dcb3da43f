import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { EVENT_TYPES, type LedgerEvent } from '@clinical-ledger/contracts';
import { bytes, LedgerStore, type PayloadDoc } from '@clinical-ledger/ledger-store';
import { DEAD_LETTER_HEADERS } from '@clinical-ledger/messaging';
import { closeAll, eventually, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { Appender, DataKeyService, keyScope, open, payloadAad } from '@clinical-ledger/log';
import { ErasureService } from '../src/erasure/erasure.service';
import { ledgerSpec, openDeadLetter, publish, startInProcess } from './helpers';

jest.setTimeout(120_000);

type Ledger = Awaited<ReturnType<typeof startInProcess>>;

/**
 * Erasure with two ledger writers on one chain, each an app of its own (own Mongo client, own
 * key cache), against real NATS and a real Mongo wire-protocol server. Races are set up by holding
 * one writer at a point of its real store calls (a gate), not by mocking the store.
 */
describe('erasure: two writers, key fencing, races (real NATS + Mongo wire server)', () => {
  const w = ledgerSpec('ledger-erasure', { keyName: 'erasure-ledger' });
  let a: Ledger;
  let b: Ledger;
  const tenant = 'e1';

  beforeAll(async () => {
    // A consent timeout with room for the in-process stand-in on a loaded machine (the default is 2 s).
    const env = w.env({ LEDGER_MAX_DELIVER: '5', LEDGER_NAK_BACKOFF_MS: '100', LEDGER_CONSENT_TIMEOUT_MS: '10000' });
    a = await startInProcess(env);
    // B appends only when told to (it is driven directly): a second writer with its own cache.
    b = await startInProcess({ ...env, LEDGER_KEY_CACHE_CHECK_MS: '60000' }, { consume: false });
    await eventually(() => a.transport?.isRunning() === true, 15_000, 'append consumer running');
  });

  afterAll(() => closeAll(a, b, w));

  // Ids and subjects of the envelope grammar (docs/ENVELOPE.md): UUIDs, keyed pseudonyms.
  const newId = (t = tenant) => `${t}:evt-${randomUUID()}`;
  const patient = (label: string) => testPseudonym(`erasure-${label}`);
  const clinical = (label: string, data: unknown) => testEvent(tenant, { id: newId(), subject: patient(label), data });
  const erasureOf = (label: string) => testEvent(tenant, { id: newId(), subject: patient(label), type: EVENT_TYPES.patientErased, dataclass: 'erasure', data: { reason: 'art. 17' } });
  const submit = async (l: Ledger, event: LedgerEvent) => {
    const receipt = await l.app.get(Appender).add(event);
    return { receipt, duplicate: receipt.duplicate === true };
  };
  const payloadOf = (event: LedgerEvent) => w.store.getPayload(tenant, event.id);
  const keyIdOf = async (event: LedgerEvent) => (await payloadOf(event))?.keyId as string;

  /** Decrypts a stored payload the way an attacker with the KEK would: with whatever key is stored. */
  async function decryptWithStoredKey(l: Ledger, p: PayloadDoc): Promise<unknown> {
    const key = await l.app.get(DataKeyService).keyForRead(p.scope, p.keyId);
    if (!key) return undefined;
    return JSON.parse(open(key, bytes(p.ciphertext), payloadAad(p.chain, p.eventId)).toString('utf8'));
  }

  async function expectErased(keyId: string, label: string, erasure: LedgerEvent): Promise<void> {
    expect(await w.store.payloads.countDocuments({ keyId })).toBe(0);
    expect(await w.store.dataKeys.countDocuments({ keyId })).toBe(0);
    const intent = await w.store.getErasureIntent(tenant, erasure.id);
    expect(intent).toMatchObject({ state: 'done', scope: keyScope(tenant, patient(label)), keyIds: [keyId] });
  }

  it('a writer that cached the key never uses it after another writer erased the patient: a new key', async () => {
    const first = clinical('x', { note: 'x before' });
    await submit(b, first);
    const old = await keyIdOf(first);
    expect(b.app.get(DataKeyService).cachedKeyIds()).toContain(old);

    const erasure = erasureOf('x');
    await submit(a, erasure);
    await expectErased(old, 'x', erasure);

    // B still holds the key in its cache (idle), but its next use is fenced by the key epoch.
    const after = clinical('x', { note: 'x after' });
    const r = await submit(b, after);
    expect(r.duplicate).toBe(false);
    const p = (await payloadOf(after)) as PayloadDoc;
    expect(p.keyId).not.toBe(old);
    expect(await decryptWithStoredKey(a, p)).toEqual({ note: 'x after' });
    expect(b.app.get(DataKeyService).cachedKeyIds()).not.toContain(old);
    expect(await w.store.payloads.countDocuments({ keyId: old })).toBe(0);
    // The chain orders them: the later event is after the erasure entry.
    expect(r.receipt.seq).toBeGreaterThan((await w.store.getEntryByEventId(tenant, erasure.id))?.seq as number);
  });

  it('an idle writer drops a destroyed key from memory at its next sweep', async () => {
    const e = clinical('idle', { note: 'idle' });
    await submit(b, e);
    const old = await keyIdOf(e);
    const bKeys = b.app.get(DataKeyService);
    expect(bKeys.cachedKeyIds()).toContain(old);
    await submit(a, erasureOf('idle'));
    await bKeys.sweep();
    expect(bKeys.cachedKeyIds()).not.toContain(old);
  });

  /** Holds B's next payload insert before or after it reaches the store, until released. */
  function gateInsertPayloads(l: Ledger, when: 'before' | 'after'): { reached: Promise<void>; release(): void } {
    const s = l.app.get(LedgerStore);
    const original = s.insertPayloads.bind(s);
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const released = new Promise<void>((r) => (release = r));
    s.insertPayloads = async (docs: PayloadDoc[]) => {
      s.insertPayloads = original;
      if (when === 'before') {
        reached();
        await released;
        return original(docs);
      }
      const out = await original(docs);
      reached();
      await released;
      return out;
    };
    return { reached: reachedP, release };
  }

  it.each(['before', 'after'] as const)(
    'an erasure that completes while the other writer is storing a ciphertext (%s the insert) leaves nothing under the destroyed key',
    async (when) => {
      const subject = `race-${when}`;
      const first = clinical(subject, { n: 1 });
      await submit(b, first);
      const old = await keyIdOf(first);

      const gate = gateInsertPayloads(b, when);
      const racing = clinical(subject, { n: 2 });
      const pending = submit(b, racing);
      await gate.reached;
      // B encrypted under the old key; A erases the patient completely meanwhile.
      const erasure = erasureOf(subject);
      await submit(a, erasure);
      await expectErased(old, subject, erasure);
      gate.release();
      const r = await pending;

      // B noticed (epoch fence), dropped what it stored under the destroyed key and encrypted again.
      expect(await w.store.payloads.countDocuments({ keyId: old })).toBe(0);
      const p = (await payloadOf(racing)) as PayloadDoc;
      expect(p.keyId).not.toBe(old);
      expect(await decryptWithStoredKey(a, p)).toEqual({ n: 2 });
      const entry = await w.store.getEntry(tenant, r.receipt.seq);
      expect(entry?.eventId).toBe(racing.id);
    },
  );

  it('a resend of an erased event does not bring its data back (the other writer appends it as a duplicate)', async () => {
    const e = clinical('resend', { secret: 'resend me' });
    const original = await submit(a, e);
    await submit(a, erasureOf('resend'));
    expect(await payloadOf(e)).toBeNull();
    // B's writer is loaded already and has never seen this event: it encrypts, then finds the duplicate.
    const again = await submit(b, e);
    expect(again.receipt.seq).toBe(original.receipt.seq);
    expect(await payloadOf(e)).toBeNull();
    expect(await w.store.entries.countDocuments({ chain: tenant, eventId: e.id })).toBe(1);
  });

  it('record reads of an erased event answer 410, never the data', async () => {
    const e = clinical('read', { secret: 'read me' });
    await submit(b, e);
    await submit(a, erasureOf('read'));
    const clinician = await w.auth.token({ tenant, roles: ['clinician'], sub: 'dr-a' });
    const consent = w.nc.subscribe(w.subjects.request('consent.decide'), {
      callback: (_e, m) => {
        m.respond(JSON.stringify({ decision: 'permit', reason: 'treatment', consentSeq: 0, breakGlass: false }));
      },
    });
    // The server has the subscription before a ledger asks (unflushed, a read could find no responder: 503).
    await w.nc.flush();
    try {
      for (const l of [a, b]) {
        const res = await fetch(`${l.url}/v1/chains/${tenant}/records/${encodeURIComponent(e.id)}?purpose=TREAT`, { headers: { authorization: `Bearer ${clinician}` } });
        expect(res.status).toBe(410);
        expect(JSON.stringify(await res.json())).not.toContain('read me');
      }
    } finally {
      consent.unsubscribe();
    }
  });

  it('refuses data without a subject as poison (missing_subject), never under the hospital-wide key; appends a subject-less event without data', async () => {
    const js = jetstream(w.nc);
    const jsm = await jetstreamManager(w.nc);
    const t = 'e2';
    const noSubject = testEvent(t, { id: newId(t), data: { name: 'Jane Roe' } });
    delete (noSubject as Partial<LedgerEvent>).subject;
    await js.publish(w.subjects.append(t, 'clinical'), JSON.stringify(noSubject), { msgID: noSubject.id });
    const empty = testEvent(t, { id: newId(t), data: {} });
    delete (empty as Partial<LedgerEvent>).subject;
    await publish(w.nc, w.subjects, empty as LedgerEvent);
    await eventually(async () => !!(await w.store.getEntryByEventId(t, empty.id)), 20_000, 'subject-less event without data appended');
    const stream = w.subjects.stream('DEAD_LETTER');
    let reason = '';
    await eventually(
      async () => {
        const info = await jsm.streams.info(stream);
        for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
          const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
          // Dead letters are sealed: the event id and the detail are read with the ledger's KEK.
          const content = m ? await openDeadLetter(w.keys.kekFile, m) : undefined;
          if (m && content?.headers['Nats-Msg-Id']?.[0] === noSubject.id) {
            reason = `${m.header.get(DEAD_LETTER_HEADERS.reason)}: ${content.detail}`;
            return true;
          }
        }
        return false;
      },
      20_000,
      'dead letter of the subject-less event',
    );
    expect(reason).toMatch(/^missing_subject: subject: an event that carries data must name the patient pseudonym/);
    expect(await w.store.getEntryByEventId(t, noSubject.id)).toBeNull();
    expect(await w.store.getPayload(t, noSubject.id)).toBeNull();
  });

  it('a pending intent whose entry is on the chain is completed by the recovery sweep', async () => {
    // The state a crash between the entry and the destruction leaves: entry + intent, key alive.
    const e = clinical('sweep', { n: 1 });
    await submit(a, e);
    const old = await keyIdOf(e);
    const erasure = erasureOf('sweep');
    const erasures = a.app.get(ErasureService);
    const complete = erasures.complete.bind(erasures);
    erasures.complete = async () => {
      throw new Error('crash before the destruction');
    };
    await expect(submit(a, erasure)).rejects.toThrow();
    erasures.complete = complete;
    expect(await w.store.getErasureIntent(tenant, erasure.id)).toMatchObject({ state: 'pending' });
    expect(await w.store.getEntryByEventId(tenant, erasure.id)).not.toBeNull();
    expect(await w.store.dataKeys.countDocuments({ keyId: old })).toBe(1);

    expect(await b.app.get(ErasureService).recoverPending()).toBeGreaterThanOrEqual(1);
    await expectErased(old, 'sweep', erasure);
    expect(await w.verifyChain(tenant)).toMatchObject({ ok: true });
  });
});
