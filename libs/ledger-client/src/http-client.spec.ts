import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LedgerHttpClient, LedgerHttpError, ledgerPath } from './http-client';

describe('LedgerHttpClient against a loopback HTTP server', () => {
  let server: Server;
  let url: string;
  const seen: { method: string; url: string; auth: string | undefined; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body });
        const reply = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(typeof value === 'string' ? value : JSON.stringify(value));
        if (req.url?.startsWith('/v1/chains/h1/entries?')) return reply(200, { tenant: 'h1', from: 0, limit: 2, size: 0, entries: [], next: null });
        if (req.url === '/v1/chains/h1/events/gone') return reply(410, { error: 'erased', message: 'the patient was erased', status: 410 });
        if (req.url === '/v1/chains/h1/entries/7') return reply(200, '[1,2]');
        if (req.url?.startsWith('/v1/admin/')) return reply(200, { tenant: 'h1', replayed: [], failed: [] });
        reply(401, { error: 'unauthenticated', message: 'no token' });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('fills the route from the contract: params encoded, undefined query values left out, the token as a bearer', async () => {
    expect(ledgerPath('GET /v1/chains/:tenant/events/:eventId', { tenant: 'h1', eventId: 'a/b c' })).toBe('/v1/chains/h1/events/a%2Fb%20c');
    expect(ledgerPath('GET /v1/chains/:tenant/proofs/inclusion', { tenant: 'h1' }, { seq: 3, size: undefined })).toBe('/v1/chains/h1/proofs/inclusion?seq=3');
    expect(() => ledgerPath('GET /v1/chains/:tenant', {})).toThrow(/missing tenant/);
    const client = new LedgerHttpClient({ url, token: () => 'tok-1' });
    expect(await client.entries('h1', 0, 2)).toMatchObject({ entries: [], next: null });
    await client.replayDeadLetters('h1', [4, 5]);
    expect(seen.slice(-2)).toEqual([
      { method: 'GET', url: '/v1/chains/h1/entries?from=0&limit=2', auth: 'Bearer tok-1', body: '' },
      { method: 'POST', url: '/v1/admin/chains/h1/deadletters/replay', auth: 'Bearer tok-1', body: '{"seqs":[4,5]}' },
    ]);
  });

  it('turns refusals, errors, non-object answers and an unreachable ledger into one typed error', async () => {
    const client = new LedgerHttpClient({ url });
    const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as LedgerHttpError);
    expect(await failure(client.chain('h1'))).toMatchObject({ code: 'LEDGER_UNAUTHORIZED', status: 401, detail: 'no token' });
    expect(await failure(client.entry('h1', { eventId: 'gone' }))).toMatchObject({ code: 'LEDGER_HTTP_ERROR', status: 410, body: { error: 'erased' } });
    expect(await failure(client.entry('h1', { seq: 7 }))).toMatchObject({ code: 'LEDGER_BAD_RESPONSE' });
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const away = await failure(new LedgerHttpClient({ url: `http://127.0.0.1:${port}` }).chain('h1'));
    expect(away).toBeInstanceOf(LedgerHttpError);
    expect(away?.code).toBe('LEDGER_UNREACHABLE');
  });
});
