import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@clinical-ledger/contracts';
import { closeAll, eventually, Infra, startInfra } from '@clinical-ledger/testing';
import { ackFields, appendStream, hl7Id, IntakeUnderTest, manifest, MllpClient, sample, startIntake } from '../test/helpers';

/**
 * HL7 control id reuse: the same MSH-10 from the same facility with different content is not taken
 * as a resend, also after intake restarts and after JetStream's duplicate window has passed (the
 * registry is a JetStream KV bucket, not the window). An identical resend stays AA.
 */
describe('HL7 control id reuse (real NATS JetStream KV)', () => {
  let infra: Infra;
  let intake: IntakeUnderTest;
  let nc: NatsConnection;
  const base = sample('valid', manifest().valid.find((e) => e.file === 'oru-r01-lab.hl7')!).toString('latin1');
  const first = base.replace('LAB2026112500042', 'REUSE-1');
  const changed = first.replace('|112|mg/dL|', '|181|mg/dL|');
  const subjects = () => new Subjects(infra.namespace);
  const stored = async (id: string) => (await appendStream(infra)).filter((s) => s.event['id'] === id);

  beforeAll(async () => {
    infra = await startInfra({ name: 'intake-control-ids' });
    nc = await connect({ servers: infra.natsUrl });
  });

  afterAll(() => closeAll(intake, nc, infra));

  it('answers AE 205 to a reused control id, AA to an identical resend, across a restart and past the duplicate window', async () => {
    intake = await startIntake(infra);
    const eventId = hl7Id(intake.secrets, 'st-marys', 'STMARYS', 'REUSE-1');
    let client = await MllpClient.connect(intake.mllpPort);
    expect(ackFields(await client.send(first))).toMatchObject({ code: 'AA', controlId: 'REUSE-1' });
    expect(ackFields(await client.send(first))).toMatchObject({ code: 'AA', controlId: 'REUSE-1' });
    const refused = ackFields(await client.send(changed));
    expect(refused).toMatchObject({ code: 'AE', controlId: 'REUSE-1', err: '205', errLocation: 'MSH^1^10' });
    expect(refused.errMessage).toContain('already used by this facility for a different message');
    client.close();
    expect((await stored(eventId)).map((s) => s.event['data'])).toEqual([first]);

    // Intake restarts; then JetStream's duplicate window passes (shortened here to 1 s).
    await intake.close();
    intake = await startIntake(infra, {}, { auth: intake.auth, secrets: intake.secrets });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.update(subjects().stream('LEDGER_APPEND'), { duplicate_window: 1_000_000_000 });
    const probeSubject = subjects().append('probe', 'clinical');
    await jetstream(nc).publish(probeSubject, '{}', { msgID: 'window-probe' });
    // The window has passed once JetStream no longer takes the same Nats-Msg-Id as a duplicate.
    await eventually(async () => !(await jetstream(nc).publish(probeSubject, '{}', { msgID: 'window-probe' })).duplicate, 10_000, 'duplicate window passed');

    client = await MllpClient.connect(intake.mllpPort);
    expect(ackFields(await client.send(changed))).toMatchObject({ code: 'AE', controlId: 'REUSE-1', err: '205' });
    expect(ackFields(await client.send(first))).toMatchObject({ code: 'AA', controlId: 'REUSE-1' });
    client.close();
    // The changed message never reached the stream; the identical resend may (the ledger deduplicates it by event id).
    expect((await stored(eventId)).every((s) => s.event['data'] === first)).toBe(true);
    expect((await appendStream(infra)).some((s) => String(s.event['data']).includes('|181|mg/dL|'))).toBe(false);
  });

  it('INTAKE_CONTROL_ID_REUSE=accept records the reused control id as an event of its own, and says so', async () => {
    const previous = intake;
    await previous.close();
    intake = await startIntake(infra, { INTAKE_CONTROL_ID_REUSE: 'accept' }, { auth: previous.auth, secrets: previous.secrets });
    const client = await MllpClient.connect(intake.mllpPort);
    const ack = ackFields(await client.send(changed));
    expect(ack).toMatchObject({ code: 'AA', controlId: 'REUSE-1' });
    expect(ack.text).toContain('used before for a different message');
    // Its resend is the same separate event.
    expect(ackFields(await client.send(changed)).code).toBe('AA');
    client.close();
    const copies = (await appendStream(infra)).filter((s) => String(s.event['data']).includes('|181|mg/dL|'));
    expect(new Set(copies.map((s) => s.event['id'])).size).toBe(1);
    expect(copies[0]!.event['id']).not.toBe(hl7Id(intake.secrets, 'st-marys', 'STMARYS', 'REUSE-1'));
    expect(copies[0]!.event['id']).toMatch(/^hl7v2:st-marys:[0-9a-f]{40}$/);
  });

  it('keeps no readable patient data in the registry: digests only', async () => {
    const jsm = await jetstreamManager(nc);
    const bucket = `KV_${subjects().stream('LEDGER_APPEND').replace(/LEDGER_APPEND$/, '')}INTAKE_CONTROL_IDS`;
    const info = await jsm.streams.info(bucket);
    expect(info.config.max_age).toBeGreaterThanOrEqual(90 * 24 * 3600 * 1e9);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(bucket, { seq });
      if (!m) continue;
      expect(m.subject).toMatch(/\.[0-9a-f]{64}$/);
      expect(m.string()).toMatch(/^[0-9a-f]{40}$/);
    }
  });
});
