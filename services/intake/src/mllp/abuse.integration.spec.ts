import { eventually, freePort, Infra, startInfra } from '@clinical-ledger/testing';
import { connect as netConnect } from 'node:net';
import { ackFields, appendStream, hl7Id, intakeSpec, IntakeUnderTest, manifest, metric, MllpClient, NatsProxy, sample, startIntake } from '../test/helpers';
import { mllpFrame, VT } from './mllp-decoder';

const base = sample('valid', manifest().valid.find((e) => e.file === 'oru-r01-lab.hl7')!).toString('latin1');
/** A valid ORU^R01 with control id `id`, padded with an NTE to about `bytes` bytes. */
const message = (id: string, bytes = 0) => {
  const text = base.replace('LAB2026112500042', id);
  return bytes > text.length ? `${text}\rNTE|2||${'x'.repeat(bytes - text.length - 8)}` : text;
};
const observation = { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/p1' }, valueQuantity: { value: 71 } };

/** Settles to 'pending' if the promise has not settled by the time every queued callback ran. */
async function state(p: Promise<unknown>): Promise<'pending' | 'settled'> {
  const marker = Symbol('pending');
  const r = await Promise.race([p.then(() => 'settled' as const, () => 'settled' as const), new Promise<symbol>((resolve) => setImmediate(() => resolve(marker)))]);
  return r === marker ? 'pending' : 'settled';
}

describe('MLLP: one memory bound across all connections', () => {
  const sut = intakeSpec('intake-mllp-memory', { INTAKE_MLLP_MAX_BUFFERED_BYTES: String(64 * 1024), INTAKE_MAX_MESSAGE_BYTES: String(60 * 1024) });

  it('answers AR to a finished frame and closes a connection with an unfinished one once the bound is reached, then takes them again', async () => {
    const held = () => metric(sut.intake.url, 'intake_mllp_buffered_bytes');
    // Connection A holds 58 KiB of an unfinished frame.
    const a = await MllpClient.connect(sut.intake.mllpPort);
    const first = mllpFrame(message('MEM-A', 58 * 1024));
    a.write(first.subarray(0, first.length - 2));
    await eventually(async () => (await held()) >= 58 * 1024, 10_000, 'intake holds the unfinished frame');

    // B sends a whole 10 KiB frame: over the bound, so AR at once (resend later), nothing kept.
    const b = await MllpClient.connect(sut.intake.mllpPort);
    const refused = ackFields(await b.send(message('MEM-B', 10 * 1024)));
    expect(refused).toMatchObject({ code: 'AR', controlId: 'MEM-B', err: '207' });
    expect(refused.errMessage).toMatch(/temporary failure.*INTAKE_MLLP_MAX_BUFFERED_BYTES/);

    // C starts a 20 KiB frame it has not finished: the connection is closed.
    const c = await MllpClient.connect(sut.intake.mllpPort);
    c.write(Buffer.concat([Buffer.from([VT]), Buffer.from(message('MEM-C', 20 * 1024), 'latin1')]));
    await expect(c.next(10_000)).rejects.toThrow(/closed/);
    expect(await metric(sut.intake.url, 'intake_mllp_overload_total', { action: 'close' })).toBe(1);
    expect(await metric(sut.intake.url, 'intake_mllp_overload_total', { action: 'ar' })).toBe(1);

    // A finishes: stored. B resends: now under the bound, stored.
    a.write(first.subarray(first.length - 2));
    expect(ackFields(await a.next())).toMatchObject({ code: 'AA', controlId: 'MEM-A' });
    expect(ackFields(await b.send(message('MEM-B', 10 * 1024)))).toMatchObject({ code: 'AA', controlId: 'MEM-B' });
    a.close();
    b.close();
    await eventually(async () => (await held()) === 0, 10_000, 'nothing held once answered');
    const ids = (await appendStream(sut.infra)).map((s) => s.event['id']);
    expect(ids).toEqual(expect.arrayContaining([hl7Id(sut.intake.secrets, 'st-marys', 'STMARYS', 'MEM-A'), hl7Id(sut.intake.secrets, 'st-marys', 'STMARYS', 'MEM-B')]));
    expect(ids).not.toContain(hl7Id(sut.intake.secrets, 'st-marys', 'STMARYS', 'MEM-C'));
  });
});

describe('NATS slow or gone: answers at once, nothing queued without bound (NATS behind a proxy)', () => {
  let infra: Infra;
  let proxy: NatsProxy;
  let intake: IntakeUnderTest;
  let token: string;
  const post = (body: unknown) =>
    fetch(`${intake.url}/fhir/r4/Observation`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) });

  beforeAll(async () => {
    infra = await startInfra({ name: 'intake-nats-slow' });
    proxy = await NatsProxy.start(infra.natsUrl);
    // Timeouts longer than the test's: an answer can only come from the bound or from the dropped connection.
    intake = await startIntake({ ...infra, natsUrl: proxy.url }, { INTAKE_MAX_INFLIGHT_PUBLISHES: '2', INTAKE_PUBLISH_TIMEOUT_MS: '600000' });
    token = await intake.auth.token({ tenant: 'st-marys', roles: ['integration'] });
  });

  afterAll(async () => {
    await intake?.close();
    await proxy?.cut();
    await infra?.close();
  });

  it('past INTAKE_MAX_INFLIGHT_PUBLISHES answers 503 + Retry-After and AR at once while the first ones wait', async () => {
    proxy.freeze();
    const waiting = [post({ ...observation, id: 'slow-1' }), post({ ...observation, id: 'slow-2' })];
    await eventually(async () => (await metric(intake.url, 'intake_jetstream_inflight')) === 2, 10_000, 'two publishes waiting for JetStream');
    const third = await post({ ...observation, id: 'slow-3' });
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('5');
    expect(JSON.stringify(await third.json())).toContain('INTAKE_MAX_INFLIGHT_PUBLISHES');
    const client = await MllpClient.connect(intake.mllpPort);
    const ar = ackFields(await client.send(message('SLOW-HL7')));
    expect(ar).toMatchObject({ code: 'AR', controlId: 'SLOW-HL7', err: '207' });
    expect(ar.errMessage).toContain('INTAKE_MAX_INFLIGHT_PUBLISHES');
    expect(await Promise.all(waiting.map(state))).toEqual(['pending', 'pending']);
    proxy.thaw();
    expect((await Promise.all(waiting)).map((r) => r.status)).toEqual([201, 201]);
    expect(ackFields(await client.send(message('SLOW-HL7'))).code).toBe('AA');
    client.close();
  });

  it('fails a publish in flight as soon as the connection drops, not after its timeout; the resend is stored once', async () => {
    proxy.freeze();
    const client = await MllpClient.connect(intake.mllpPort);
    const pendingHttp = post({ ...observation, id: 'cut-1' });
    await eventually(async () => (await metric(intake.url, 'intake_jetstream_inflight')) === 1, 10_000, 'the publish is in flight');
    client.write(mllpFrame(message('CUT-HL7')));
    await eventually(async () => (await metric(intake.url, 'intake_jetstream_inflight')) === 2, 10_000, 'the HL7 message is in flight');
    await proxy.cut();
    const res = await pendingHttp;
    expect(res.status).toBe(503);
    expect(JSON.stringify(await res.json())).toMatch(/dropped|not reachable/);
    const ack = ackFields(await client.next());
    expect(ack).toMatchObject({ code: 'AR', controlId: 'CUT-HL7', err: '207' });
    client.close();
    await proxy.restore();
    await eventually(async () => (await fetch(`${intake.url}/readyz`)).status === 200, 30_000, 'intake reconnected');
    const again = await MllpClient.connect(intake.mllpPort);
    await eventually(async () => ackFields(await again.send(message('CUT-HL7'))).code === 'AA', 20_000, 'resend stored');
    again.close();
    expect((await post({ ...observation, id: 'cut-1' })).status).toBeLessThan(300);
    const stored = (await appendStream(infra)).filter((s) => s.event['id'] === hl7Id(intake.secrets, 'st-marys', 'STMARYS', 'CUT-HL7'));
    expect(stored).toHaveLength(1);
  });
});

describe('MLLP opens only once NATS is connected', () => {
  let infra: Infra;
  let proxy: NatsProxy;
  let intake: IntakeUnderTest;

  beforeAll(async () => {
    infra = await startInfra({ name: 'intake-mllp-late' });
    proxy = await NatsProxy.start(infra.natsUrl, { listening: false });
  });

  afterAll(async () => {
    await intake?.close();
    await proxy?.cut();
    await infra?.close();
  });

  it('refuses connections (no AR storm) while NATS is away, then answers AA to the first message', async () => {
    const port = await freePort();
    intake = await startIntake({ ...infra, natsUrl: proxy.url }, { INTAKE_MLLP_PORT: String(port) }, { waitReady: false });
    await eventually(async () => (await fetch(`${intake.url}/healthz`)).status === 200, 20_000, 'intake alive');
    expect((await fetch(`${intake.url}/readyz`)).status).toBe(503);
    const refused = await new Promise<string>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve('connected')));
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    await proxy.restore();
    await eventually(async () => (await fetch(`${intake.url}/readyz`)).status === 200, 30_000, 'intake ready once NATS is there');
    const client = await MllpClient.connect(port);
    expect(ackFields(await client.send(message('LATE-1')))).toMatchObject({ code: 'AA', controlId: 'LATE-1' });
    client.close();
  });
});
