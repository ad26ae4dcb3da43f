import { SseParser } from './live';
import { claims } from './session';
import { sparkPoints } from './spark';

describe('SSE parser', () => {
  it('splits events across chunk boundaries, skips comments, parses JSON data', () => {
    const p = new SseParser();
    expect(p.push('retry: 3000\n\n: keep-alive\n\nid: 1\nevent: hel')).toEqual([]);
    expect(p.push('lo\ndata: {"tenant":"h"}\n\nid: 2\r\nevent: receipt\r\ndata: {"seq":4}\r\n\r\n')).toEqual([
      { id: '1', event: 'hello', data: { tenant: 'h' } },
      { id: '2', event: 'receipt', data: { seq: 4 } },
    ]);
  });
});

describe('ingest chart', () => {
  it('draws one point a bucket across the box, the peak at the top', () => {
    expect(sparkPoints([0, 5, 10], 120, 28)).toBe('0.0,27.0 60.0,14.0 120.0,1.0');
    expect(sparkPoints([], 120, 28)).toBe('');
  });
});

describe('session claims', () => {
  it('reads tenant, roles, sub and exp; refuses a token without tenant or roles', () => {
    const tok = (body: object) => `h.${Buffer.from(JSON.stringify(body)).toString('base64url')}.s`;
    expect(claims(tok({ sub: 'a', tenant: 'h', roles: ['auditor'], exp: 5 }))).toEqual({ token: expect.any(String), tenant: 'h', actor: 'a', roles: ['auditor'], exp: 5 });
    expect(claims(tok({ sub: 'a', roles: ['auditor'] }))).toBeUndefined();
    expect(claims('not-a-token')).toBeUndefined();
  });
});
