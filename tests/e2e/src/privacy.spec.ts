import { createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { BSON, MongoClient } from 'mongodb';
import { EVENT_TYPES, type LedgerEvent, Subjects } from '@clinical-ledger/contracts';
import {
  eventually,
  hl7Adt,
  type LocalServer,
  mllpSend,
  type ServiceName,
  type Stack,
  startFerretDb,
  startNatsServer,
  startStack,
} from '@clinical-ledger/testing';

jest.setTimeout(300_000);

/**
 * Privacy by construction, checked from the outside: a unique marker goes into the patient fields
 * of an HL7 v2 message (MLLP), a FHIR Patient and a CloudEvent, sent through the real intake,
 * ledger, consent and audit processes. Once the ledger has acked them, the raw bytes of every data
 * folder (NATS store, FerretDB), every message of every stream, every document of every Mongo
 * database and every service log are searched for the marker in every form it could take (plain,
 * HL7-escaped, JSON-escaped, base64 at each alignment, base64url, hex, UTF-16). Only encrypted
 * payloads may hold it: no readable hit anywhere. After the patient's erasure, nothing decrypts to
 * it either: every payload left is decrypted with every data key the KEK still unwraps.
 *
 * The servers are local binaries with their own data folders (the route CI takes), whatever
 * NATS_URL/MONGO_URL say: the raw folders must be readable here. A control string stored in plain
 * proves the raw search sees the store's folder. One limit: PostgreSQL (FerretDB's default backend
 * here) compresses values over about 2 kB, which a raw search cannot see into; every live document
 * is therefore also searched through the wire protocol, where it comes back whole.
 */
const TENANT = 'privacy-h';
const AUTHORITY_SYSTEM = 'urn:oid:1.2.840.99999.1';
const SERVICES: ServiceName[] = ['intake', 'ledger', 'consent', 'audit'];

const core = `Mark${randomBytes(8).toString('hex')}`;
/** A different string, stored in plain on purpose: proves each search can see plain text at all. */
const control = `Ctl${randomBytes(8).toString('hex')}`;
const mrn = `M${core}`;

interface Needle {
  form: string;
  bytes: Buffer;
}

/** Every byte form the marker may take, each long enough to be unique. */
function needlesFor(text: string, label: string): Needle[] {
  const out: Needle[] = [];
  const add = (form: string, b: Buffer) => out.push({ form: `${label} ${form}`, bytes: b });
  const utf8 = Buffer.from(text, 'utf8');
  add('plain', utf8);
  add('utf-16le', Buffer.from(text, 'utf16le'));
  add('hex', Buffer.from(utf8.toString('hex')));
  add('HEX', Buffer.from(utf8.toString('hex').toUpperCase()));
  // base64 depends on where the text starts within a 3-byte group: try all three alignments and
  // keep only the characters that encode the text's own bytes.
  for (let off = 0; off < 3; off++) {
    const b64 = Buffer.concat([Buffer.alloc(off, 0x20), utf8]).toString('base64');
    const first = Math.ceil(off / 3) * 4;
    const groups = Math.floor((off + utf8.length) / 3);
    const inner = b64.slice(first, groups * 4);
    add(`base64@${off}`, Buffer.from(inner));
    add(`base64url@${off}`, Buffer.from(inner.replace(/\+/g, '-').replace(/\//g, '_')));
  }
  return out;
}

const NEEDLES: Needle[] = [
  ...needlesFor(core, 'marker'),
  // The same field as HL7 v2 carries it (escaped component separator), unescaped, and in JSON.
  ...needlesFor(`Priv\\S\\${core}`, 'hl7-escaped'),
  ...needlesFor(`Priv^${core}`, 'hl7-unescaped'),
  ...needlesFor(`Priv\\\\S\\\\${core}`, 'hl7-escaped-in-json'),
];

function hitsIn(bytes: Buffer | Uint8Array, where: string): string[] {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  return NEEDLES.filter((n) => b.includes(n.bytes)).map((n) => `${where}: ${n.form}`);
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    if (s.isDirectory()) out.push(...filesUnder(p));
    else if (s.isFile()) out.push(p);
  }
  return out;
}

function rawFolderHits(dir: string, label: string): string[] {
  return filesUnder(dir).flatMap((f) => hitsIn(readFileSync(f), `${label} ${f.slice(dir.length)}`));
}

/** AES-256-GCM as the ledger stores it: iv (12) || ciphertext || tag (16). */
function aesGcmOpen(key: Buffer, blob: Buffer, aad: string): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, blob.subarray(0, 12));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(blob.subarray(blob.length - 16));
  return Buffer.concat([d.update(blob.subarray(12, blob.length - 16)), d.final()]);
}

/** The HL7 v2 message: the marker in the name (escaped), the MRN, the address and the phone. */
function adtA01(controlId: string): string {
  return hl7Adt({ controlId, mrn, name: `Priv\\S\\${core}^JANE^Q^^^^L`, pidTail: `|||12 ${core} ST^^SPRINGFIELD^IL^62701^USA^H||^PRN^PH^^1^217^${core}|||M` });
}

describe('privacy: no readable patient data anywhere, and nothing after erasure', () => {
  let nats: LocalServer;
  let ferret: LocalServer;
  let nc: NatsConnection;
  let mongo: MongoClient;
  const subjects = new Subjects('');
  const dbName = `privacy_${randomBytes(4).toString('hex')}`;
  const logDir = mkdtempSync(join(tmpdir(), 'privacy-logs-'));
  let stack: Stack;
  let pseudonym: string;
  const sentIds: string[] = [];

  beforeAll(async () => {
    [nats, ferret] = await Promise.all([startNatsServer(), startFerretDb()]);
    process.stderr.write(`[privacy] nats ${nats.url} (${nats.dataDir}), FerretDB ${ferret.url} (${ferret.dataDir})\n`);
    stack = await startStack({
      env: {
        NATS_URL: nats.url,
        MONGO_URL: ferret.url,
        MONGO_DB: dbName,
        // The most talkative level: a payload logged at any level is a leak.
        LOG_LEVEL: 'debug',
        LEDGER_CHECKPOINT_INTERVAL_MS: '500',
        // Treatment reads are permitted without a consent record: the test reads the data back once.
        CONSENT_DEFAULT: 'permit-treatment',
      },
      tenant: TENANT,
      authority: AUTHORITY_SYSTEM,
      services: SERVICES,
      logDir,
      keyName: 'privacy',
    });
    pseudonym = stack.patient(mrn);
    nc = await connect({ servers: nats.url });
    mongo = new MongoClient(ferret.url);
  });

  afterAll(async () => {
    await stack?.close();
    await nc?.close();
    await mongo?.close();
    await Promise.all([nats?.remove(), ferret?.remove()]);
  });

  /** Every message (data and headers) of every stream, through the API (decrypted by the server if the store is encrypted). */
  async function streamHits(): Promise<string[]> {
    const jsm = await jetstreamManager(nc);
    const hits: string[] = [];
    for await (const si of jsm.streams.list()) {
      const name = si.config.name;
      const info = await jsm.streams.info(name);
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const m = await jsm.streams.getMessage(name, { seq }).catch(() => null);
        if (!m) continue;
        const headerText = m.header ? [...m.header.keys()].map((k) => `${k}: ${m.header.values(k).join(',')}`).join('\n') : '';
        hits.push(...hitsIn(Buffer.concat([Buffer.from(m.subject), Buffer.from(headerText), Buffer.from(m.data)]), `stream ${name} #${seq}`));
      }
    }
    return hits;
  }

  /** Every document of every collection of every database, as raw BSON (strings and binaries alike). */
  async function mongoHits(): Promise<string[]> {
    const hits: string[] = [];
    const dbs = await mongo.db('admin').admin().listDatabases();
    for (const d of dbs.databases) {
      const db = mongo.db(d.name);
      for (const c of await db.listCollections({}, { nameOnly: true }).toArray()) {
        for (const doc of await db.collection(c.name).find({}).toArray()) {
          hits.push(...hitsIn(BSON.serialize(doc), `mongo ${d.name}.${c.name} ${String(doc['_id'])}`));
        }
      }
    }
    return hits;
  }

  function logHits(): string[] {
    return readdirSync(logDir).flatMap((f) => hitsIn(readFileSync(join(logDir, f)), `log ${f}`));
  }

  /** Decrypts every stored payload with the data keys the KEK unwraps: what an insider could read. */
  async function decryptable(): Promise<{ eventId: string; plain: string }[]> {
    const kek = readFileSync(stack.keys.kekFile);
    const db = mongo.db(dbName);
    const out: { eventId: string; plain: string }[] = [];
    const dataKeys = new Map<string, Buffer>();
    for (const k of await db.collection('ledger_data_keys').find({}).toArray()) {
      const wrapped = Buffer.from((k['wrapped'] as { buffer: Uint8Array }).buffer);
      dataKeys.set(`${String(k['_id'])}#${String(k['keyId'])}`, aesGcmOpen(kek, wrapped, `clinical-ledger:dek:${String(k['_id'])}#${String(k['keyId'])}`));
    }
    for (const p of await db.collection('ledger_payloads').find({}).toArray()) {
      const blob = Buffer.from((p['ciphertext'] as { buffer: Uint8Array }).buffer);
      for (const key of dataKeys.values()) {
        try {
          out.push({ eventId: String(p['eventId']), plain: aesGcmOpen(key, blob, `clinical-ledger:payload:${String(p['chain'])}/${String(p['eventId'])}`).toString('utf8') });
          break;
        } catch {
          /* not this key */
        }
      }
    }
    return out;
  }

  /**
   * Stops both servers (everything flushed to disk), searches their folders, starts them again.
   * `controlSeen` says whether the control string was found in FerretDB's folder.
   */
  async function rawHits(): Promise<{ hits: string[]; controlSeen: boolean }> {
    await Promise.all([nats.stop(), ferret.stop()]);
    try {
      const controlSeen = filesUnder(ferret.dataDir).some((f) => readFileSync(f).includes(Buffer.from(control)));
      return { hits: [...rawFolderHits(nats.dataDir, 'nats-store'), ...rawFolderHits(ferret.dataDir, 'ferretdb')], controlSeen };
    } finally {
      await Promise.all([nats.start(), ferret.start()]);
      // Back in business: JetStream answers this client, and every service is ready again.
      await eventually(async () => !!(await (await jetstreamManager(nc)).getAccountInfo()), 30_000, 'JetStream back');
      // A service not ready names its failing check in the /readyz body: the failure message carries it.
      for (const s of stack.running) {
        await eventually(async () => {
          const res = await fetch(`${s.url}/readyz`);
          if (res.status !== 200) throw new Error(`/readyz ${res.status} ${await res.text()}`);
          return true;
        }, 30_000, `${s.name} ready again`);
      }
    }
  }

  /** A clinician's consent-gated read of a record through the ledger. */
  async function readRecord(eventId: string, query = 'purpose=TREAT'): Promise<{ status: number; text: string }> {
    const clinician = await stack.auth.token({ tenant: TENANT, roles: ['clinician'], sub: 'dr-privacy' });
    const res = await fetch(`${stack.svc('ledger').url}/v1/chains/${TENANT}/records/${encodeURIComponent(eventId)}?${query}`, { headers: { authorization: `Bearer ${clinician}` } });
    return { status: res.status, text: await res.text() };
  }

  async function ledgerAcked(eventIds: string[]): Promise<void> {
    const db = mongo.db(dbName);
    await eventually(async () => (await db.collection('ledger_entries').countDocuments({ chain: TENANT, eventId: { $in: eventIds } })) === eventIds.length, 60_000, 'entries on the chain');
    const jsm = await jetstreamManager(nc);
    await eventually(async () => {
      const info = await jsm.consumers.info(subjects.stream('LEDGER_APPEND'), 'ledger');
      return info.num_pending + info.num_ack_pending === 0;
    }, 60_000, 'ledger acked everything');
  }

  it('after the ledger acked HL7 v2, FHIR and CloudEvents carrying the marker: no readable copy anywhere', async () => {
    const token = await stack.auth.token({ tenant: TENANT, roles: ['integration'], sub: 'mirth-1' });
    const ack = await mllpSend(stack.mllpPort, adtA01(`PRIV${randomBytes(4).toString('hex')}`));
    expect(ack).toMatch(/MSA\|AA\|/);
    const fhir = await fetch(`${stack.svc('intake').url}/fhir/r4/Patient`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'Patient',
        identifier: [{ system: AUTHORITY_SYSTEM, value: mrn, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] } }],
        name: [{ family: `Priv^${core}`, given: ['Jane'] }],
        telecom: [{ system: 'phone', value: `+1 217 ${core}` }],
        address: [{ line: [`12 ${core} St`], city: 'Springfield' }],
        birthDate: '1980-02-14',
      }),
    });
    expect(fhir.status).toBe(201);
    const ce = await fetch(`${stack.svc('intake').url}/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: `lab-${randomUUID()}`,
        source: 'urn:example:lis',
        type: 'com.example.lab.result',
        datacontenttype: 'application/json',
        dataclass: 'lab',
        patientid: `${AUTHORITY_SYSTEM}|${mrn}`,
        data: { patientName: `Priv^${core}`, note: `potassium high for ${core}` },
      }),
    });
    expect([200, 201, 202]).toContain(ce.status);
    for (const r of [fhir, ce]) sentIds.push(r.headers.get('x-event-id') as string);
    const db = mongo.db(dbName);
    await eventually(async () => (await db.collection('ledger_entries').countDocuments({ chain: TENANT, subject: pseudonym })) === 3, 60_000, 'three events of the patient on the chain');
    const ids = (await db.collection('ledger_entries').find({ chain: TENANT, subject: pseudonym }).toArray()).map((e) => String(e['eventId']));
    await ledgerAcked(ids);

    // The data is there for those who may read it: a permitted read returns it (and is recorded).
    const read = await readRecord(sentIds[0] as string);
    expect(read.status).toBe(200);
    expect(read.text).toContain(core);
    // A break-glass read whose free-text reason names the patient: the reason is patient data too.
    const glass = await readRecord(sentIds[1] as string, `purpose=ETREAT&breakGlassReason=${encodeURIComponent(`unconscious, chart of Priv^${core}`)}`);
    expect(glass.status).toBe(200);
    await ledgerAcked([]);

    // Positive controls: the ledger really holds the marker (encrypted): in the three records and
    // in the break-glass access record; and the searches can see plain text.
    const plain = (await decryptable()).filter((p) => hitsIn(Buffer.from(p.plain), 'payload').length > 0).map((p) => p.eventId);
    expect(plain.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
    expect(plain.filter((id) => id.startsWith('access:'))).toHaveLength(1);
    await db.collection('privacy_control').insertOne({ _id: 'control' as never, text: control });
    const raw = await rawHits();
    expect(raw.controlSeen).toBe(true);
    expect(readFileSync(join(logDir, 'ledger.log'), 'utf8')).toContain('"service":"ledger"');

    // No readable marker anywhere (one list, so a failure shows every place at once).
    expect([...raw.hits, ...(await streamHits()), ...(await mongoHits()), ...logHits()]).toEqual([]);
  });

  it('after the patient\'s erasure: nothing readable anywhere, and no payload left decrypts to the marker', async () => {
    const db = mongo.db(dbName);
    const erasure: LedgerEvent = {
      specversion: '1.0',
      id: `erasure-${randomUUID()}`,
      source: 'urn:clinical-ledger:privacy-office',
      type: EVENT_TYPES.patientErased,
      subject: pseudonym,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      tenant: TENANT,
      dataclass: 'erasure',
      data: { reason: 'GDPR art. 17 request' },
    };
    await jetstream(nc).publish(subjects.append(TENANT, 'erasure'), JSON.stringify(erasure), { msgID: erasure.id });
    await eventually(async () => (await db.collection('ledger_erasures').findOne({ _id: `${TENANT}/${erasure.id}` as never }))?.['state'] === 'done', 60_000, 'erasure done');
    await ledgerAcked([erasure.id]);

    const afterRead = await readRecord(sentIds[0] as string);
    expect(afterRead.status).toBe(410);
    expect(afterRead.text).not.toContain(core);
    const decrypted = (await decryptable()).flatMap((p) => hitsIn(Buffer.from(p.plain), `decrypted payload ${p.eventId}`));
    expect([...decrypted, ...(await streamHits()), ...(await mongoHits()), ...logHits(), ...(await rawHits()).hits]).toEqual([]);
    // The chain still verifies, with the erased entries on it.
    const auditor = await stack.auth.token({ tenant: TENANT, roles: ['auditor'], sub: 'auditor-1' });
    await eventually(async () => (await fetch(`${stack.svc('ledger').url}/readyz`)).status === 200, 30_000, 'ledger ready after the restarts');
    const verify = (await (await fetch(`${stack.svc('ledger').url}/v1/chains/${TENANT}/verify`, { headers: { authorization: `Bearer ${auditor}` } })).json()) as { ok: boolean };
    expect(verify.ok).toBe(true);
  });
});
