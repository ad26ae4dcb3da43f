import { eventually } from '@clinical-ledger/testing';
import { ackFields, appendStream, hl7Id, intakeSpec, manifest, MllpClient, sample } from '../test/helpers';

/**
 * JetStream goes away mid-stream: every message sent meanwhile is refused (AR, "resend later";
 * HTTP 503 with Retry-After), never acknowledged; after NATS is back the resent messages land
 * exactly once.
 */
describe('NATS outage (own nats-server, stopped and restarted)', () => {
  const sut = intakeSpec('intake-outage', { INTAKE_PUBLISH_TIMEOUT_MS: '1000' }, { ownServers: true });
  const base = sample('valid', manifest().valid[5]!).toString('latin1');
  const msg = (id: string) => base.replace('LAB2026112500042', id);

  it('answers AR (not AA) while JetStream is down, and stores each resent message once after', async () => {
    const nats = sut.infra.nats;
    if (!nats) throw new Error('this test needs its own NATS server');
    const client = await MllpClient.connect(sut.intake.mllpPort);
    const before = ['UP-0', 'UP-1', 'UP-2'];
    for (const id of before) expect(ackFields(await client.send(msg(id))).code).toBe('AA');

    await nats.stop();
    const during = ['DOWN-0', 'DOWN-1', 'DOWN-2', 'DOWN-3'];
    for (const id of during) {
      const ack = ackFields(await client.send(msg(id)));
      expect(ack).toMatchObject({ code: 'AR', controlId: id, err: '207' });
      expect(ack.errMessage).toMatch(/temporary failure/);
    }
    const token = await sut.intake.auth.token({ tenant: 'st-marys', roles: ['integration'] });
    const res = await fetch(`${sut.intake.url}/fhir/r4/Observation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/p1' }, valueQuantity: { value: 71 } }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(((await res.json()) as { issue: { code: string }[] }).issue[0]?.code).toBe('transient');

    await nats.start();
    await eventually(async () => (await fetch(`${sut.intake.url}/readyz`)).status === 200, 30_000, 'intake ready again');
    // The engine resends what was refused (and, say, one it had an AA for).
    for (const id of [...during, 'UP-1']) {
      await eventually(async () => ackFields(await client.send(msg(id))).code === 'AA', 15_000, `${id} accepted`);
    }
    client.close();

    const stream = await appendStream(sut.infra);
    for (const id of [...before, ...during]) {
      expect({ id, count: stream.filter((s) => s.event['id'] === hl7Id(sut.intake.secrets, 'st-marys', 'STMARYS', id)).length }).toEqual({ id, count: 1 });
    }
    expect(stream).toHaveLength(before.length + during.length);
  });
});
