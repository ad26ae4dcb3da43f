import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@clinical-ledger/contracts';
import { HAND_BACK_ALLOWANCE } from '@clinical-ledger/messaging';
import {
  eventually,
  LocalServer,
  ledgerTestKeys,
  pseudonymSecretsFile,
  ServiceName,
  ServiceProcess,
  spawnService,
  startFerretDb,
  startNatsServer,
  testAuth,
  workspaceRoot,
} from '@clinical-ledger/testing';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The shipped NATS configuration (deploy/nats/nats-server.conf) on a real nats-server: each
 * service may publish and subscribe only where DESIGN.md says.
 */
describe('NATS per-service permissions', () => {
  const passwords = { intake: 'pw-intake', ledger: 'pw-ledger', consent: 'pw-consent', audit: 'pw-audit', operator: 'pw-op' };
  let server: LocalServer;
  const open: NatsConnection[] = [];

  beforeAll(async () => {
    server = await startNatsServer(undefined, {
      configFile: join(workspaceRoot(), 'deploy', 'nats', 'nats-server.conf'),
      env: Object.fromEntries(Object.entries(passwords).map(([u, p]) => [`NATS_${u.toUpperCase()}_PASSWORD`, p])),
    });
    const op = await as('operator');
    const jsm = await jetstreamManager(op);
    // As the operator declares them in production: the documented retention and max age.
    for (const s of new Subjects().streams()) {
      await jsm.streams.add({ name: s.name, subjects: s.subjects, retention: s.retention as RetentionPolicy, max_age: s.maxAgeMs * 1_000_000 });
    }
  });
  afterAll(async () => {
    await Promise.all(open.map((nc) => nc.close()));
    await server.remove();
  });

  const SERVICES = ['intake', 'ledger', 'consent', 'audit'] as const;

  /** A connection as that user, with the user's own inbox prefix (as NatsService connects). */
  async function as(user: keyof typeof passwords, inboxPrefix = user === 'operator' ? undefined : `_INBOX_${user}`): Promise<NatsConnection> {
    const nc = await connect({ servers: server.url, user, pass: passwords[user], ...(inboxPrefix ? { inboxPrefix } : {}) });
    open.push(nc);
    return nc;
  }

  /** Subscribes and flushes; resolves with the server's permission error for that subscription, if any. */
  async function subscribeError(nc: NatsConnection, subject: string): Promise<string | null> {
    const errors: string[] = [];
    const watcher = (async () => {
      for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
    })();
    const sub = nc.subscribe(subject);
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    void watcher;
    if (!sub.isClosed()) sub.unsubscribe();
    return errors.find((e) => /permission/i.test(e) && e.includes(subject)) ?? null;
  }

  /** Publishes and flushes; resolves with the permission error the server sent back, if any. */
  async function publishError(nc: NatsConnection, subject: string): Promise<string | null> {
    const errors: string[] = [];
    const watcher = (async () => {
      for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
    })();
    nc.publish(subject, 'x');
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    void watcher;
    return errors.find((e) => /permission/i.test(e)) ?? null;
  }

  it('lets intake append durably but never forge a receipt or checkpoint', async () => {
    const nc = await as('intake');
    const ack = await jetstream(nc).publish('ledger.append.h1.clinical', '{}', { msgID: 'evt-1' });
    expect(ack.stream).toBe('LEDGER_APPEND');
    expect(await publishError(nc, 'ledger.entry.h1')).toMatch(/permission/i);
    expect(await publishError(nc, 'ledger.checkpoint.h1')).toMatch(/permission/i);
    // Only clinical events: never an erasure, a consent or a forged access record.
    for (const category of ['erasure', 'consent', 'access']) {
      expect(await publishError(nc, `ledger.append.h1.${category}`)).toMatch(/permission/i);
    }
  });

  it('keeps audit from appending to any chain', async () => {
    const nc = await as('audit');
    expect(await publishError(nc, 'ledger.append.h1.clinical')).toMatch(/permission/i);
  });

  it('lets consent append consent events only', async () => {
    const nc = await as('consent');
    expect(await publishError(nc, 'ledger.append.h1.consent')).toBeNull();
    expect(await publishError(nc, 'ledger.append.h1.clinical')).toMatch(/permission/i);
  });

  it('lets intake ask for a receipt but not read records or decide consent', async () => {
    const nc = await as('intake');
    expect(await publishError(nc, 'ledger.get.entry')).toBeNull();
    expect(await publishError(nc, 'ledger.record.read')).toMatch(/permission/i);
    expect(await publishError(nc, 'consent.decide')).toMatch(/permission/i);
  });

  it('lets intake use its control id registry (KV) and no other bucket or stream', async () => {
    const kv = await new Kvm(jetstream(await as('operator'))).create('INTAKE_CONTROL_IDS', { history: 1 });
    await kv.create('a'.repeat(64), 'digest-1');
    const intakeKv = await new Kvm(jetstream(await as('intake'))).open('INTAKE_CONTROL_IDS');
    await intakeKv.create('b'.repeat(64), 'digest-2');
    expect((await intakeKv.get('a'.repeat(64)))?.string()).toBe('digest-1');
    await expect(intakeKv.create('a'.repeat(64), 'other')).rejects.toThrow();
    const nc = await as('intake');
    expect(await publishError(nc, '$KV.OTHER_BUCKET.x')).toMatch(/permission/i);
    expect(await publishError(nc, '$JS.API.STREAM.DELETE.KV_INTAKE_CONTROL_IDS')).toMatch(/permission/i);
    expect(await publishError(nc, '$JS.API.STREAM.PURGE.LEDGER_APPEND')).toMatch(/permission/i);
  });

  it('lets every service subscribe to its own inbox prefix only: never the shared _INBOX.> nor another service\'s', async () => {
    for (const user of SERVICES) {
      const nc = await as(user);
      expect(await subscribeError(nc, `_INBOX_${user}.x`)).toBeNull();
      expect(await subscribeError(nc, '_INBOX.>')).toMatch(/permission/i);
      for (const other of SERVICES.filter((o) => o !== user)) expect(await subscribeError(nc, `_INBOX_${other}.>`)).toMatch(/permission/i);
    }
  });

  it('answers requests and PubAcks on the caller\'s own inbox; a client on the shared inbox gets nothing back', async () => {
    const ledger = await as('ledger');
    const stub = ledger.subscribe('ledger.get.entry', {
      callback: (_e, m) => {
        m.respond('receipt');
      },
    });
    await ledger.flush();
    const intake = await as('intake');
    expect((await intake.request('ledger.get.entry', '{}', { timeout: 5_000 })).string()).toBe('receipt');
    expect((await jetstream(intake).publish('ledger.append.h1.clinical', '{}', { msgID: 'evt-own-inbox' })).duplicate).toBe(false);
    const shared = await as('intake', '_INBOX');
    await expect(shared.request('ledger.get.entry', '{}', { timeout: 2_000 })).rejects.toThrow();
    await expect(jetstream(shared, { timeout: 2_000 }).publish('ledger.append.h1.clinical', '{}', { msgID: 'evt-shared-inbox' })).rejects.toThrow();
    // The real ledger answers these below.
    stub.unsubscribe();
  });

  it('lets only the ledger create, read from and ack consumers of LEDGER_APPEND (audit can never ack an event before it is stored)', async () => {
    const intake = await as('intake');
    for (const n of [1, 2]) await jetstream(intake).publish('ledger.append.h2.clinical', JSON.stringify({ n }), { msgID: `evt-consumer-${n}` });
    const ledger = await as('ledger');
    const jsm = await jetstreamManager(ledger);
    await jsm.consumers.add('LEDGER_APPEND', { durable_name: 'ledger-perm', ack_policy: AckPolicy.Explicit, filter_subject: 'ledger.append.h2.>' });
    const consumer = await jetstream(ledger).consumers.get('LEDGER_APPEND', 'ledger-perm');
    const first = await consumer.next({ expires: 5_000 });
    expect(first?.json()).toEqual({ n: 1 });
    expect(await first?.ackAck()).toBe(true);

    const second = await consumer.next({ expires: 5_000 });
    if (!second) throw new Error('no second message');
    // The ack subject the server gave the ledger (the client keeps it on the underlying message).
    const ackSubject = (second as unknown as { msg: { reply: string } }).msg.reply;
    expect(ackSubject.startsWith('$JS.ACK.LEDGER_APPEND.ledger-perm.')).toBe(true);
    for (const user of ['audit', 'intake', 'consent'] as const) {
      const nc = await as(user);
      // Acking the ledger's in-flight message, or pulling, inspecting, creating or deleting its consumer.
      expect(await publishError(nc, ackSubject)).toMatch(/permission/i);
      for (const api of ['CONSUMER.MSG.NEXT.LEDGER_APPEND.ledger-perm', 'CONSUMER.INFO.LEDGER_APPEND.ledger-perm', 'CONSUMER.DELETE.LEDGER_APPEND.ledger-perm', `CONSUMER.CREATE.LEDGER_APPEND.${user}-copy`, `CONSUMER.DURABLE.CREATE.LEDGER_APPEND.${user}-copy`]) {
        expect(await publishError(nc, `$JS.API.${api}`)).toMatch(/permission/i);
      }
    }
    // Nor read LEDGER_APPEND's stored messages (plain patient data) through the stream API.
    for (const user of ['audit', 'intake', 'consent'] as const) {
      const nc = await as(user);
      for (const api of ['STREAM.MSG.GET.LEDGER_APPEND', 'DIRECT.GET.LEDGER_APPEND', 'STREAM.MSG.DELETE.LEDGER_APPEND', 'STREAM.PURGE.LEDGER_APPEND']) {
        expect(await publishError(nc, `$JS.API.${api}`)).toMatch(/permission/i);
      }
    }
    const stored = await jsm.streams.getMessage('LEDGER_APPEND', { seq: second.info.streamSequence });
    expect(stored?.json()).toEqual({ n: 2 });
    const audit = await as('audit');
    await expect((await jetstreamManager(audit, { timeout: 2_000 })).consumers.add('LEDGER_APPEND', { durable_name: 'audit-access', ack_policy: AckPolicy.Explicit })).rejects.toThrow();
    // Nobody else's ack counted: the message is still the ledger's to ack.
    expect((await jsm.consumers.info('LEDGER_APPEND', 'ledger-perm')).num_ack_pending).toBe(1);
    expect(await second.ackAck()).toBe(true);
    expect((await jsm.consumers.info('LEDGER_APPEND', 'ledger-perm')).num_ack_pending).toBe(0);
    await jsm.consumers.delete('LEDGER_APPEND', 'ledger-perm');
  });

  it('lets the ledger alone follow the MAX_DELIVERIES advisories of LEDGER_APPEND and manage the dead letters', async () => {
    const op = await jetstreamManager(await as('operator'));
    await op.streams.info('DELIVERY_EXCEEDED').catch(() => op.streams.add({ name: 'DELIVERY_EXCEEDED', subjects: ['$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.LEDGER_APPEND.*'] }));
    const jsm = await jetstreamManager(await as('ledger'));
    await jsm.consumers.add('DELIVERY_EXCEEDED', { durable_name: 'ledger_exhausted', ack_policy: AckPolicy.Explicit, filter_subject: '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.LEDGER_APPEND.ledger' });
    expect((await jsm.consumers.info('DELIVERY_EXCEEDED', 'ledger_exhausted')).name).toBe('ledger_exhausted');
    expect(await publishError(await as('ledger'), '$JS.API.STREAM.MSG.GET.DEAD_LETTER')).toBeNull();
    for (const user of ['audit', 'intake', 'consent'] as const) {
      const nc = await as(user);
      for (const api of ['CONSUMER.INFO.DELIVERY_EXCEEDED.ledger_exhausted', 'CONSUMER.MSG.NEXT.DELIVERY_EXCEEDED.ledger_exhausted', 'STREAM.MSG.GET.DEAD_LETTER', 'STREAM.PURGE.DEAD_LETTER']) {
        expect(await publishError(nc, `$JS.API.${api}`)).toMatch(/permission/i);
      }
    }
  });

  it('lets the ledger alone take, read and list chain leases (LEDGER_LEASES), never delete or purge the bucket', async () => {
    await new Kvm(jetstream(await as('operator'))).create('LEDGER_LEASES', { history: 1, ttl: 10_000 });
    const kv = await new Kvm(jetstream(await as('ledger'))).open('LEDGER_LEASES');
    const revision = await kv.create('chain.h1', 'writer-0');
    expect(await kv.update('chain.h1', 'writer-0', revision)).toBeGreaterThan(revision);
    expect((await kv.get('chain.h1'))?.string()).toBe('writer-0');
    const keys: string[] = [];
    for await (const k of await kv.keys('chain.>')) keys.push(k);
    expect(keys).toEqual(['chain.h1']);
    const ledger = await as('ledger');
    for (const api of ['STREAM.DELETE.KV_LEDGER_LEASES', 'STREAM.PURGE.KV_LEDGER_LEASES', 'STREAM.UPDATE.KV_LEDGER_LEASES']) {
      expect(await publishError(ledger, `$JS.API.${api}`)).toMatch(/permission/i);
    }
    for (const user of ['audit', 'intake', 'consent'] as const) {
      const nc = await as(user);
      expect(await publishError(nc, '$KV.LEDGER_LEASES.chain.h1')).toMatch(/permission/i);
      expect(await publishError(nc, '$JS.API.DIRECT.GET.KV_LEDGER_LEASES.$KV.LEDGER_LEASES.chain.h1')).toMatch(/permission/i);
      expect(await publishError(nc, '$JS.API.CONSUMER.CREATE.KV_LEDGER_LEASES.x.$KV.LEDGER_LEASES.>')).toMatch(/permission/i);
    }
  });

  it('lets audit manage and ack only its own consumers on LEDGER_ENTRIES, AUDIT and DEAD_LETTER', async () => {
    const audit = await as('audit');
    const jsm = await jetstreamManager(audit, { timeout: 2_000 });
    await jsm.consumers.add('LEDGER_ENTRIES', { durable_name: 'audit-checkpoints', ack_policy: AckPolicy.Explicit, filter_subjects: ['ledger.checkpoint.*'] });
    await jsm.consumers.add('LEDGER_ENTRIES', { durable_name: 'audit-access', ack_policy: AckPolicy.Explicit, filter_subjects: ['ledger.entry.*'] });
    await jsm.consumers.add('AUDIT', { durable_name: 'audit-alerts', ack_policy: AckPolicy.Explicit, filter_subjects: ['audit.alert.*', 'audit.breakglass.*'] });
    await jsm.consumers.add('DEAD_LETTER', { durable_name: 'audit-deadletters', ack_policy: AckPolicy.Explicit, filter_subjects: ['deadletter.ledger_append.*.>'] });
    await jetstream(await as('ledger')).publish('ledger.checkpoint.h1', JSON.stringify({ size: 1 }), { msgID: 'cp-perm-1' });
    const m = await (await jetstream(audit).consumers.get('LEDGER_ENTRIES', 'audit-checkpoints')).next({ expires: 5_000 });
    expect(m?.json()).toEqual({ size: 1 });
    expect(await m?.ackAck()).toBe(true);
    // Another name, or its names on another stream: refused.
    await expect(jsm.consumers.add('LEDGER_ENTRIES', { durable_name: 'snoop', ack_policy: AckPolicy.Explicit })).rejects.toThrow();
    await expect(jsm.consumers.add('AUDIT', { durable_name: 'audit-checkpoints', ack_policy: AckPolicy.Explicit })).rejects.toThrow();
    // The ledger, in turn, has no business with audit's consumers.
    expect(await publishError(await as('ledger'), '$JS.API.CONSUMER.DELETE.LEDGER_ENTRIES.audit-checkpoints')).toMatch(/permission/i);
    // Its own it may delete (the service below creates them afresh).
    for (const [stream, durable] of [['LEDGER_ENTRIES', 'audit-checkpoints'], ['LEDGER_ENTRIES', 'audit-access'], ['AUDIT', 'audit-alerts'], ['DEAD_LETTER', 'audit-deadletters']]) {
      expect(await jsm.consumers.delete(stream, durable)).toBe(true);
    }
  });

  // Also with the ledger's chain leases (LEDGER_LEASES=true, as ledger.writer.leases in the chart):
  // the lease bucket and the per-chain consumer must work under the ledger user's rights.
  describe.each([
    { leases: false, tenant: 'hosp-a' },
    { leases: true, tenant: 'hosp-b' },
  ])('the services, each connected as its own user (leases: $leases)', ({ leases, tenant }) => {
    const auth = testAuth();
    let mongo: LocalServer;
    const running: ServiceProcess[] = [];
    const svc = (name: ServiceName) => running.find((r) => r.name === name) as ServiceProcess;
    async function http(name: ServiceName, method: string, path: string, token: string, body?: unknown, type = 'application/json') {
      const res = await fetch(`${svc(name).url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': type } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    }

    beforeAll(async () => {
      mongo = await startFerretDb();
      // Declared by the operator: the services may not create streams or buckets.
      const kvm = new Kvm(jetstream(await as('operator')));
      await kvm.create('INTAKE_CONTROL_IDS', { history: 1 });
      if (leases) {
        // As `ledgerctl streams init --leases` leaves it: the lease bucket, no shared ledger consumer.
        await kvm.create('LEDGER_LEASES', { history: 1, ttl: 10_000 });
        await (await jetstreamManager(await as('operator'))).consumers.delete('LEDGER_APPEND', 'ledger').catch(() => undefined);
      }
      const dir = mkdtempSync(join(tmpdir(), 'nats-users-'));
      const keys = ledgerTestKeys('nats-users');
      const common = { NATS_URL: server.url, NATS_MANAGE_STREAMS: 'false', MONGO_URL: mongo.url, MONGO_DB: 'nats_users', LOG_LEVEL: 'warn', INTAKE_MLLP_PORT: '0', ...auth.env };
      const extra: Partial<Record<ServiceName, Record<string, string>>> = {
        ledger: { ...keys.ledgerEnv, LEDGER_CHECKPOINT_INTERVAL_MS: '300', ...(leases ? { LEDGER_LEASES: 'true', LEDGER_REPLICA_ID: 'ledger-writer-0', LEDGER_LEASE_SCAN_MS: '200' } : {}) },
        consent: { CONSENT_DEFAULT: 'permit-treatment' },
        intake: { INTAKE_PSEUDONYM_SECRETS_FILE: pseudonymSecretsFile({ [tenant]: randomBytes(32) }) },
        audit: { ...keys.auditEnv, AUDIT_POLL_INTERVAL_MS: '0' },
      };
      for (const name of ['ledger', 'consent', 'intake', 'audit'] as const) {
        const passwordFile = join(dir, `${name}.password`);
        writeFileSync(passwordFile, `${passwords[name]}\n`, { mode: 0o600 });
        running.push(await spawnService(name, { ...common, ...extra[name], NATS_USER: name, NATS_PASSWORD_FILE: passwordFile }));
      }
      for (const r of running) await eventually(async () => (await fetch(`${r.url}/readyz`)).status === 200, 30_000, `${r.name} ready under its NATS user`);
    });
    afterAll(async () => {
      await Promise.all(running.map((r) => r.stop()));
      await mongo?.remove();
    });

    it('takes an event through intake into the chain, proves it, gates a record read through consent, and logs the read in audit', async () => {
      const integration = await auth.token({ tenant, roles: ['integration'], sub: 'engine-1' });
      const auditor = await auth.token({ tenant, roles: ['auditor'], sub: 'audit-office' });
      const clinician = await auth.token({ tenant, roles: ['clinician'], sub: 'dr-a' });
      // intake -> LEDGER_APPEND (PubAck on _INBOX_intake) -> the ledger's pull consumer (_INBOX_ledger) -> chain.
      const ce = { specversion: '1.0', id: 'ce-perm-1', source: 'urn:test:lis', type: 'org.example.lab.result', dataclass: 'lab', patientid: 'urn:oid:1.2.3|MRN-1', data: { hb: 13.2 } };
      const accepted = await http('intake', 'POST', '/events', integration, ce, 'application/cloudevents+json');
      expect(accepted).toMatchObject({ status: 201, body: { eventId: expect.any(String) } });
      const eventId = accepted.body['eventId'] as string;
      await eventually(async () => (await http('ledger', 'GET', `/v1/chains/${tenant}/receipts/${encodeURIComponent(eventId)}`, auditor)).status === 200, 30_000, 'the event on the chain');
      await eventually(async () => (await http('ledger', 'GET', `/v1/chains/${tenant}/proofs/inclusion?eventId=${encodeURIComponent(eventId)}`, auditor)).status === 200, 30_000, 'an inclusion proof');
      // ledger -> consent.decide (reply on _INBOX_ledger) -> the access entry appended (PubAck on _INBOX_ledger) -> data.
      const read = await http('ledger', 'GET', `/v1/chains/${tenant}/records/${encodeURIComponent(eventId)}?purpose=TREAT`, clinician);
      expect(read.status).toBe(200);
      expect(read.body['data']).toEqual({ hb: 13.2 });
      // audit's own consumer of LEDGER_ENTRIES (pulled on _INBOX_audit, acked as audit-access) puts the read in the access log.
      const entry = await http('ledger', 'GET', `/v1/chains/${tenant}/events/${encodeURIComponent(eventId)}`, auditor);
      const patient = ((entry.body['core'] as Record<string, Record<string, unknown>>)['event'] as Record<string, unknown>)['subject'] as string;
      await eventually(async () => {
        const log = await http('audit', 'GET', `/v1/audit/${tenant}/patients/${encodeURIComponent(patient)}/access`, auditor);
        return log.status === 200 && log.body['total'] === 1;
      }, 30_000, 'the read in the access log');
      for (const r of running) expect(r.output()).not.toMatch(/Permissions Violation/i);
    });

    it('dead-letters (sealed) what intake sent with its expected-stream header, lists it and replays it, as the ledger user', async () => {
      const admin = await auth.token({ tenant, roles: ['admin'], sub: 'ops' });
      // Published as intake publishes (Nats-Expected-Stream: LEDGER_APPEND), text the ledger refuses.
      const poison = { specversion: '1.0', id: `${tenant}:perm-poison-1`, source: 'urn:test:lis', type: 'org.example.\ud800', time: new Date().toISOString(), tenant, dataclass: 'lab', data: { note: 'PERM-MARKER' } };
      await jetstream(await as('intake')).publish(`ledger.append.${tenant}.clinical`, JSON.stringify(poison), { msgID: poison.id, expect: { streamName: 'LEDGER_APPEND' } });
      const listed = async () => (await http('ledger', 'GET', `/v1/admin/chains/${tenant}/deadletters`, admin)).body['deadLetters'] as { seq: number; msgId: string; reason: string }[];
      await eventually(async () => (await listed()).some((d) => d.msgId === poison.id), 30_000, 'dead-lettered under the ledger user');
      const first = (await listed()).find((d) => d.msgId === poison.id) as { seq: number; reason: string };
      expect(first.reason).toBe('invalid_envelope');
      const stored = await (await jetstreamManager(await as('operator'))).streams.getMessage('DEAD_LETTER', { seq: first.seq });
      expect(stored?.header.get('Dead-Letter-Sealed')).toBe('ledger-kek-v1');
      expect(stored?.string()).not.toContain('PERM-MARKER');
      // Replay publishes the original back on its subject (still poison: it comes back as a new dead letter).
      const replay = await http('ledger', 'POST', `/v1/admin/chains/${tenant}/deadletters/replay`, admin, { seqs: [first.seq] });
      expect(replay).toMatchObject({ status: 200, body: { replayed: [{ seq: first.seq, msgId: poison.id }], failed: [] } });
      await eventually(async () => (await listed()).some((d) => d.msgId === poison.id && d.seq > first.seq), 30_000, 'dead-lettered again');
      const consumer = await (await jetstreamManager(await as('operator'))).consumers.info('LEDGER_APPEND', leases ? `ledger_${tenant}` : 'ledger');
      // Leased chain consumers check the crash bound (10) themselves, leaving out hand-backs, so the
      // server's max_deliver is only a backstop above it there (libs/messaging discountHandBacks; hand-over.spec).
      expect(consumer.config.max_deliver).toBe(leases ? 10 + HAND_BACK_ALLOWANCE : 10);
      for (const r of running) expect(r.output()).not.toMatch(/Permissions Violation|dead letter not stored/i);
    });
  });

  it('refuses a wrong password', async () => {
    await expect(connect({ servers: server.url, user: 'ledger', pass: 'nope', reconnect: false })).rejects.toThrow(
      /authorization/i,
    );
  });
});
