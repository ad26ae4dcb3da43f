import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@clinical-ledger/contracts';
import {
  eventually,
  ledgerTestKeys,
  natsServerBinary,
  spawnService,
  startFerretDb,
  startNatsServer,
  testAuth,
  testPseudonym,
  type LocalServer,
  type ServiceProcess,
} from '@clinical-ledger/testing';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

jest.setTimeout(120_000);

/** Every file under a folder, as raw bytes. */
function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push({ path: p, bytes: readFileSync(p) });
  }
  return out;
}

/** The marker in plain text and in base64 at each of the three byte alignments it can take. */
function markerForms(marker: string): string[] {
  const forms = [marker];
  for (const pad of ['', 'x', 'xx']) {
    const b64 = Buffer.from(pad + marker).toString('base64');
    // Drop the characters that depend on the neighbouring bytes.
    forms.push(b64.slice(pad ? 4 : 0, -4));
  }
  return forms;
}

function hits(dir: string, marker: string): string[] {
  const forms = markerForms(marker);
  return filesUnder(dir).flatMap((f) => forms.filter((m) => f.bytes.includes(m)).map((m) => `${f.path}: ${m}`));
}

/**
 * What a copy of the NATS store folder gives away. With the harness's local route (as `npm run
 * up` runs it) the store is encrypted: after patient data went through the real ledger (recorded,
 * dead-lettered), the raw bytes hold no marker, plain or base64. A server without the key shows
 * the scan does find what is there.
 */
describe('the bus at rest (real nats-server store folder)', () => {
  const marker = `MARKER-${randomUUID()}`;
  const tenant = 'rest-hosp';
  const subjects = new Subjects();
  let nats: LocalServer;
  let mongo: LocalServer;
  let ledger: ServiceProcess | undefined;
  let nc: NatsConnection | undefined;
  const dataDir = join(mkdtempSync(join(tmpdir(), 'bus-at-rest-')), 'nats');

  const event = (id: string, over: Record<string, unknown> = {}) => ({
    specversion: '1.0',
    id,
    source: 'urn:test:his',
    type: 'org.hl7.v2.adt.a01',
    subject: testPseudonym('rest-patient'),
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    tenant,
    dataclass: 'encounter',
    data: { name: `Doe^Jane ${marker}`, address: `1 ${marker} Street` },
    ...over,
  });

  beforeAll(async () => {
    [nats, mongo] = await Promise.all([startNatsServer(undefined, { dataDir }), startFerretDb()]);
    const keys = ledgerTestKeys('rest');
    ledger = await spawnService('ledger', { NATS_URL: nats.url, MONGO_URL: mongo.url, MONGO_DB: 'rest', LOG_LEVEL: 'warn', ...testAuth().env, ...keys.ledgerEnv });
    nc = await connect({ servers: nats.url });
  });

  afterAll(async () => {
    await ledger?.stop();
    await nc?.close();
    await Promise.all([nats?.remove(), mongo?.remove()]);
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('keeps no readable patient data in the store folder, after recording and dead-lettering it', async () => {
    const conn = nc as NatsConnection;
    const js = jetstream(conn);
    const jsm = await jetstreamManager(conn);
    await eventually(async () => (await jsm.streams.names().next()).includes('LEDGER_APPEND'), 20_000, 'streams declared');
    const good = event(`${tenant}:good-1`);
    // A lone surrogate in `type`: the ledger cannot canonicalise it, so it is poison.
    const poison = event(`${tenant}:poison-1`, { type: 'org.example.\ud800' });
    await js.publish(subjects.append(tenant, 'clinical'), JSON.stringify(good), { msgID: good.id, expect: { streamName: 'LEDGER_APPEND' } });
    await js.publish(subjects.append(tenant, 'clinical'), JSON.stringify(poison), { msgID: poison.id, expect: { streamName: 'LEDGER_APPEND' } });
    await eventually(async () => (await jsm.streams.info('LEDGER_ENTRIES')).state.messages >= 1, 30_000, 'receipt published');
    await eventually(async () => (await jsm.streams.info('DEAD_LETTER')).state.messages === 1, 30_000, 'poison dead-lettered');
    // The work queue holds nothing once the ledger has acked (recorded or dead-lettered).
    await eventually(async () => (await jsm.streams.info('LEDGER_APPEND')).state.messages === 0, 30_000, 'append stream empty');

    // No message of any stream holds the marker readably.
    for await (const name of jsm.streams.names()) {
      const info = await jsm.streams.info(name);
      for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(name, { seq });
        if (!m) continue;
        const text = `${m.subject}\n${[...m.header].map(([k, v]) => `${k}: ${v.join(',')}`).join('\n')}\n${Buffer.from(m.data).toString('latin1')}`;
        for (const form of markerForms(marker)) expect(`${name}#${seq}: ${text.includes(form) ? form : ''}`).toBe(`${name}#${seq}: `);
      }
    }

    // The raw bytes of the store folder, after a clean shutdown (everything flushed).
    await ledger?.stop();
    ledger = undefined;
    await conn.close();
    nc = undefined;
    await nats.stop();
    expect(filesUnder(dataDir).length).toBeGreaterThan(0);
    expect(hits(dataDir, marker)).toEqual([]);

    // The same store opens again with the key kept beside it.
    await nats.start();
    nc = await connect({ servers: nats.url });
    expect((await (await jetstreamManager(nc)).streams.info('DEAD_LETTER')).state.messages).toBe(1);
  });

  it('(control) an unencrypted store folder does give the marker away, so the scan above can fail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bus-plain-'));
    const bin = await natsServerBinary();
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const proc = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
    try {
      let conn: NatsConnection | undefined;
      await eventually(async () => {
        conn = await connect({ servers: `nats://127.0.0.1:${port}` });
        return true;
      }, 20_000, 'plain nats-server up');
      const c = conn as NatsConnection;
      await (await jetstreamManager(c)).streams.add({ name: 'PLAIN', subjects: ['plain.>'] });
      await jetstream(c).publish('plain.x', JSON.stringify(event(`${tenant}:plain-${randomBytes(3).toString('hex')}`)));
      await c.close();
    } finally {
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      });
    }
    expect(hits(dir, marker).length).toBeGreaterThan(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
