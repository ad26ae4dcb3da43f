import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@clinical-ledger/contracts';
import { LocalServer, startNatsServer, workspaceRoot } from '@clinical-ledger/testing';
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
    for (const s of new Subjects().streams()) await jsm.streams.add({ name: s.name, subjects: s.subjects });
  });
  afterAll(async () => {
    await Promise.all(open.map((nc) => nc.close()));
    await server.remove();
  });

  async function as(user: keyof typeof passwords): Promise<NatsConnection> {
    const nc = await connect({ servers: server.url, user, pass: passwords[user] });
    open.push(nc);
    return nc;
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

  it('refuses a wrong password', async () => {
    await expect(connect({ servers: server.url, user: 'ledger', pass: 'nope', reconnect: false })).rejects.toThrow(
      /authorization/i,
    );
  });
});
