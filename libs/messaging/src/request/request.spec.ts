import { Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { InvalidInputError, Subjects } from '@clinical-ledger/contracts';
import { BaseConfig, createLogger, loadConfig, PlatformModule, startDefinition, type RunningService } from '@clinical-ledger/platform';
import { eventually, Infra, startInfra, testAuth, type TestAuth } from '@clinical-ledger/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { lastValueFrom } from 'rxjs';
import { MessagingModule } from '../messaging.module';
import { natsRequests } from '../transports';
import { NatsRequestClient } from './client';
import { RequestRefusedError, RequestUnavailableError } from './errors';
import { OnRequest, RequestResponders, type RequestBody, type RequestContext } from './transport';

/** A responder whose answers depend on the body: the transport's encoding and admission are what is tested. */
@RequestResponders()
class ProbeResponders {
  @OnRequest('ledger.get.checkpoint')
  checkpoint(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): unknown {
    if (b['size'] === 'bad') throw new InvalidInputError([{ field: 'size', message: 'must be a tree size' }]);
    if (b['size'] === 'boom') throw new Error('the store fell over');
    return { tenant: ctx.tenant, size: Number(b['size'] ?? 0), actor: ctx.admission.principal.actor };
  }
}

describe('NATS request/reply: @OnRequest handlers on NatsRequestTransport, asked with NatsRequestClient', () => {
  let infra: Infra;
  let auth: TestAuth;
  let svc: RunningService;
  let nc: NatsConnection;
  let client: NatsRequestClient;
  const subjects = () => new Subjects(infra.namespace);

  beforeAll(async () => {
    infra = await startInfra({ name: 'requests' });
    auth = testAuth();
    const config = loadConfig(BaseConfig, { NATS_URL: infra.natsUrl, NATS_NAMESPACE: infra.namespace, SERVICE_NAME: 'probe', HTTP_HOST: '127.0.0.1', ...auth.env });
    @Module({ imports: [PlatformModule.forRoot(config), MessagingModule], controllers: [ProbeResponders] })
    class ProbeModule {}
    svc = await startDefinition(
      { module: ProbeModule, config, transports: (app) => [natsRequests(app, { queue: 'probe', readiness: 'probe-responders' })] },
      { port: 0, handleSignals: false, logger: createLogger('probe', 'silent') },
    );
    nc = await connect({ servers: infra.natsUrl });
    const token = await auth.token({ tenant: 'h1', roles: ['auditor'], sub: 'aud-1' });
    client = new NatsRequestClient({ connection: async () => nc, subjects: subjects(), authorization: () => `Bearer ${token}`, timeoutMs: 5_000 });
    await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 20_000, 'probe ready');
  });
  afterAll(async () => {
    await nc?.close();
    await svc?.close();
    auth?.remove();
    await infra?.close();
  });

  it('answers admitted callers with the handler result; Nest send() gives the same', async () => {
    expect(await client.ask('ledger.get.checkpoint', { tenant: 'h1', size: 3 })).toEqual({ tenant: 'h1', size: 3, actor: 'aud-1' });
    expect(await lastValueFrom(client.send('ledger.get.checkpoint', { tenant: 'h1', size: 4 }))).toMatchObject({ size: 4 });
  });

  it('refuses without a token, for another hospital, and on bad input, one encoding decoded one way', async () => {
    const refused = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as RequestRefusedError);
    expect(await refused(client.ask('ledger.get.checkpoint', { tenant: 'h1' }, { authorization: '' }))).toMatchObject({ status: 401, code: 'unauthenticated' });
    expect(await refused(client.ask('ledger.get.checkpoint', { tenant: 'h2' }))).toMatchObject({ status: 403, code: 'forbidden' });
    const bad = await refused(client.ask('ledger.get.checkpoint', { tenant: 'h1', size: 'bad' as never }));
    expect(bad).toBeInstanceOf(RequestRefusedError);
    expect(bad?.reply).toMatchObject({ error: 'invalid_input', status: 400, errors: [{ field: 'size' }] });
    expect(await refused(client.ask('ledger.get.checkpoint', { tenant: 'H 1' }))).toMatchObject({ status: 400, code: 'invalid_input' });
    const raw = await nc.request(subjects().request('ledger.get.checkpoint'), 'not json', { timeout: 5_000 });
    expect(raw.json()).toMatchObject({ error: 'invalid_input', status: 400, errors: [{ field: '(body)' }] });
  });

  it('reports its own failures and missing responders as unavailable', async () => {
    const failed = await client.ask('ledger.get.checkpoint', { tenant: 'h1', size: 'boom' as never }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(RequestUnavailableError);
    expect(failed).toMatchObject({ status: 500, code: 'internal' });
    const nobody = new NatsRequestClient({ connection: async () => nc, subjects: new Subjects('elsewhere'), timeoutMs: 1_000 });
    const none = await nobody.ask('ledger.get.checkpoint', { tenant: 'h1' }).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(RequestUnavailableError);
    expect((none as RequestUnavailableError).reply).toBeUndefined();
  });
});
