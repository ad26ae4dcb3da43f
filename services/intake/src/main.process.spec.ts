import { closeAll, eventually, freePort, Infra, ServiceProcess, spawnService, startInfra, testAuth } from '@clinical-ledger/testing';
import { ackFields, MllpClient, manifest, sample, secretsFile } from './test/helpers';

/** Intake as it runs in production: the built main.js as its own process. */
describe('intake process (dist/services/intake)', () => {
  let infra: Infra;
  let intake: ServiceProcess;
  let mllpPort: number;

  beforeAll(async () => {
    infra = await startInfra({ name: 'intake-process' });
    mllpPort = await freePort();
    intake = await spawnService('intake', {
      ...infra.env(),
      INTAKE_MLLP_PORT: String(mllpPort),
      INTAKE_MLLP_HOST: '127.0.0.1',
      INTAKE_FACILITY_TENANTS: 'STMARYS=st-marys',
      INTAKE_PSEUDONYM_SECRETS_FILE: secretsFile(['st-marys']).path,
      ...testAuth().env,
    });
    await eventually(async () => (await fetch(`${intake.url}/readyz`)).status === 200, 20_000, 'intake ready');
  });

  afterAll(() => closeAll(intake, infra));

  it('acknowledges over MLLP, logs JSON without patient data, and exits 0 on SIGTERM', async () => {
    const client = await MllpClient.connect(mllpPort);
    const e = manifest().valid[0]!;
    expect(ackFields(await client.send(sample('valid', e)))).toMatchObject({ code: 'AA', controlId: e.controlId });
    client.close();
    // Log lines reach us through a pipe, a little after the answer.
    await eventually(() => intake.output().includes('"msg":"HL7 message accepted"'), 5_000, 'acceptance logged');
    expect(intake.output()).toContain(`"port":${mllpPort}`);
    expect(intake.output()).not.toMatch(/MRN00012345|DOE\^JANE/);
    expect(await intake.stop('SIGTERM')).toBe(0);
  });

  it('refuses to start with an unusable secrets file, naming the variable', async () => {
    await expect(
      spawnService('intake', { NATS_URL: infra.natsUrl, MONGO_URL: infra.mongoUrl, INTAKE_MLLP_PORT: '0', INTAKE_PSEUDONYM_SECRETS_FILE: '/nonexistent.json', ...testAuth().env }),
    ).rejects.toThrow(/INTAKE_PSEUDONYM_SECRETS_FILE: cannot read \/nonexistent.json/);
  });
});
