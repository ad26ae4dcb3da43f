import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { EVENT_TYPES, Subjects, type LedgerEvent } from '@clinical-ledger/contracts';
import { eventually, ledgerTestKeys, spawnService, startInfra, testAuth, testEvent, testPseudonym, type Infra, type ServiceProcess } from '@clinical-ledger/testing';
import { cli } from './test/fixtures';

jest.setTimeout(180_000);

/**
 * `ledgerctl deadletters list|replay` against real ledger processes (dist/services/ledger) on a
 * real NATS JetStream and Mongo wire-protocol server: a poison message (the lone-surrogate repro)
 * and a message whose deliveries all ended in a crash are dead-lettered (sealed), listed with their
 * reasons, the crashed one replayed once the cause is gone, and an erasure purges the patient's.
 */
describe('ledgerctl deadletters against running ledgers', () => {
  let infra: Infra;
  let nc: NatsConnection;
  let subjects: Subjects;
  let ledger: ServiceProcess | undefined;
  const auth = testAuth();
  const keys = ledgerTestKeys('dl-ledger');
  const T = 'dl-hosp';
  let admin: string;

  const event = (over: Partial<LedgerEvent> = {}): LedgerEvent =>
    testEvent(T, { type: 'org.hl7.v2.adt.a01', subject: testPseudonym('alice'), dataclass: 'encounter', data: { name: 'Alice Example' }, ...over });
  // As intake publishes: with the msg id and the expected stream (the header that broke dead-lettering).
  const publish = async (e: LedgerEvent, category: 'clinical' | 'erasure' = 'clinical') =>
    (await jetstream(nc).publish(subjects.append(T, category), JSON.stringify(e), { msgID: e.id, expect: { streamName: subjects.stream('LEDGER_APPEND') } })).seq;

  const startLedger = (extra: Record<string, string> = {}) =>
    spawnService('ledger', {
      ...infra.env({ LOG_LEVEL: 'warn' }),
      LEDGER_ACK_WAIT_MS: '1000',
      LEDGER_NAK_BACKOFF_MS: '100',
      ...keys.ledgerEnv,
      ...auth.env,
      ...extra,
    });
  const online = () => ['--url', (ledger as ServiceProcess).url, '--tenant', T, '--token', admin];
  const list = async () => {
    const r = await cli(['deadletters', 'list', ...online(), '--json']);
    expect(r.code).toBe(0);
    return r.json['deadLetters'] as { seq: number; reason: string; detail: string; msgId: string; subject: string; readable: boolean }[];
  };
  const size = async () => {
    const res = await fetch(`${(ledger as ServiceProcess).url}/v1/chains/${T}`, { headers: { authorization: `Bearer ${admin}` } });
    return ((await res.json()) as { size: number }).size;
  };

  beforeAll(async () => {
    infra = await startInfra({ name: 'ledgerctl-deadletters', ownServers: true });
    subjects = new Subjects(infra.namespace);
    nc = await connect({ servers: infra.natsUrl });
    admin = await auth.token({ tenant: T, roles: ['admin'], sub: 'ops-1' });
  });

  afterAll(async () => {
    await ledger?.stop('SIGKILL');
    await nc?.close();
    await infra?.close();
  });

  it('dead-letters a message whose every delivery crashed the ledger, lists it, and replays it once the cause is gone', async () => {
    // The ledger runs (its consumer exists) with a crash bound of 1...
    ledger = await startLedger({ LEDGER_MAX_DELIVER: '1', LEDGER_CRASH_BOUND: '1' });
    await eventually(async () => (await fetch(`${(ledger as ServiceProcess).url}/readyz`)).ok, 60_000, 'ledger ready');
    // ... the store goes away: the ledger holds the next message in a transient retry (delivery 1) ...
    await infra.mongo?.stop();
    const crashed = event({ subject: testPseudonym('bob'), data: { name: 'Bob Example' } });
    await publish(crashed);
    await eventually(async () => {
      const info = await (await jetstreamManager(nc)).consumers.info(subjects.stream('LEDGER_APPEND'), 'ledger');
      return info.num_ack_pending === 1;
    }, 60_000, 'message in hand');
    // ... and dies with it (a crash: no ack, no nak). With a crash bound of 1, that was its last delivery.
    await ledger.stop('SIGKILL');
    await infra.mongo?.start();
    ledger = await startLedger({ LEDGER_MAX_DELIVER: '1', LEDGER_CRASH_BOUND: '1' });
    await eventually(async () => (await list()).some((d) => d.msgId === crashed.id), 60_000, 'crashed message dead-lettered');
    const dl = (await list()).find((d) => d.msgId === crashed.id);
    expect(dl).toMatchObject({ reason: 'max_deliver_exceeded', subject: subjects.append(T, 'clinical'), readable: true });
    expect(dl?.detail).toMatch(/without a verdict/);
    // The server delivers it no more, and nothing else of it waits in the work queue.
    const info = await (await jetstreamManager(nc)).streams.info(subjects.stream('LEDGER_APPEND'));
    expect(info.state.messages).toBe(0);
    expect(await size()).toBe(0);

    // The cause is gone: replay puts it back, the ledger appends it, and it leaves the dead letters.
    const human = await cli(['deadletters', 'replay', ...online(), '--seq', String(dl?.seq)]);
    expect(human.code).toBe(0);
    expect(human.out).toContain(`replayed #${dl?.seq}`);
    await eventually(async () => (await size()) === 1, 60_000, 'replayed event on the chain');
    const entry = (await (await fetch(`${ledger.url}/v1/chains/${T}/entries/0`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { eventId: string };
    expect(entry.eventId).toBe(crashed.id);
    expect((await list()).some((d) => d.msgId === crashed.id)).toBe(false);
    // A second replay of the same seq finds nothing.
    const again = await cli(['deadletters', 'replay', ...online(), '--seq', String(dl?.seq), '--json']);
    expect(again.code).toBe(3);
    expect(again.json).toMatchObject({ ok: false, error: { code: 'LEDGER_NOT_FOUND' } });
  });

  it('dead-letters the lone-surrogate event at once (no loop), lists it with its reason, and an erasure purges the patient’s dead letters', async () => {
    await ledger?.stop('SIGTERM');
    ledger = await startLedger();
    const surrogate = event({ type: 'org.example.\ud800', subject: testPseudonym('carol'), data: { name: 'Carol Marker' } });
    const other = event({ subject: testPseudonym('dave'), time: 'yesterday' });
    await publish(surrogate);
    await publish(other);
    await eventually(async () => (await list()).filter((d) => d.msgId === surrogate.id || d.msgId === other.id).length === 2, 60_000, 'both dead-lettered');
    const byId = Object.fromEntries((await list()).map((d) => [d.msgId, d]));
    expect(byId[surrogate.id]).toMatchObject({ reason: expect.stringMatching(/^(not_canonical|invalid_envelope)$/), readable: true });
    expect(byId[other.id]).toMatchObject({ reason: 'invalid_envelope', detail: expect.stringContaining('time') });
    // Delivered once, dead-lettered once: the consumer is not redelivering anything.
    const consumer = await (await jetstreamManager(nc)).consumers.info(subjects.stream('LEDGER_APPEND'), 'ledger');
    expect(consumer.num_ack_pending + consumer.num_pending).toBe(0);
    expect(consumer.config.max_deliver).toBe(10);

    // Human output, and the token checks: an auditor may not list them.
    const human = await cli(['deadletters', 'list', ...online()]);
    expect(human.out).toContain(`event ${other.id}`);
    const auditor = await auth.token({ tenant: T, roles: ['auditor'], sub: 'aud' });
    const refused = await cli(['deadletters', 'list', '--url', ledger.url, '--tenant', T, '--token', auditor]);
    expect(refused.code).toBe(3);

    // Carol is erased: her dead letter goes with her key; Dave's stays.
    const before = await size();
    await publish(event({ type: EVENT_TYPES.patientErased, subject: testPseudonym('carol'), dataclass: 'erasure', data: { reason: 'request' } }), 'erasure');
    await eventually(async () => (await size()) === before + 1, 60_000, 'erasure recorded');
    await eventually(async () => !(await list()).some((d) => d.msgId === surrogate.id), 20_000, 'carol’s dead letter purged');
    expect((await list()).some((d) => d.msgId === other.id)).toBe(true);
  });
});
