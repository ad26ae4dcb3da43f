// The shell forwards only what the app uses: these paths decide what a patient token can reach
// through it (each upstream still decides every request on its own access rules).
import { ROUTES } from './proxy.controller';

const forwarded = (upstream: string, method: string, path: string) => ROUTES.some((r) => r.upstream === upstream && r.method === method && r.pattern.test(path));
const P = 'pseudo:abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz';

describe('portal proxy routes', () => {
  it('forwards the app’s reads, the public checkpoint and hash tiles, the FHIR Consent API and the live access log', () => {
    for (const [upstream, method, path] of [
      ['ledger', 'GET', `/v1/chains/h1/patients/${P}/events`],
      ['ledger', 'GET', '/v1/chains/h1/events/ev-1'],
      ['ledger', 'GET', '/v1/chains/h1/records/ev-1'],
      ['ledger', 'GET', '/v1/chains/h1/tlog/checkpoint'],
      ['ledger', 'GET', '/v1/chains/h1/tlog/tile/0/000.p/7'],
      ['ledger', 'GET', '/v1/chains/h1/tlog/tile/1/x001/x234/067'],
      ['audit', 'GET', `/v1/audit/h1/patients/${P}/access`],
      ['audit', 'GET', `/v1/audit/h1/patients/${P}/access/stream`],
      ['consent', 'GET', '/fhir/r4/Consent'],
      ['consent', 'POST', '/fhir/r4/Consent'],
      ['consent', 'PUT', '/fhir/r4/Consent/c-1'],
    ]) {
      expect(`${method} ${upstream}${path} ${forwarded(upstream, method, path)}`).toBe(`${method} ${upstream}${path} true`);
    }
  });

  it('forwards nothing else: entry bundles, chain listings, proofs, staff streams, other verbs', () => {
    for (const [upstream, method, path] of [
      ['ledger', 'GET', '/v1/chains/h1/tlog/tile/entries/000.p/7'],
      ['ledger', 'GET', '/v1/chains/h1/tlog/tile/0/000/../../entries'],
      ['ledger', 'GET', '/v1/chains/h1/entries'],
      ['ledger', 'GET', '/v1/chains/h1/proofs/inclusion'],
      ['ledger', 'POST', '/v1/chains/h1/records/ev-1'],
      ['audit', 'GET', '/v1/audit/h1/stream'],
      ['audit', 'GET', '/v1/audit/h1/actors/dr-x/access'],
      ['consent', 'DELETE', '/fhir/r4/Consent/c-1'],
      ['consent', 'POST', '/v1/consents'],
      ['consent', 'POST', '/v1/consent/decide'],
      ['consent', 'GET', '/fhir/r4/Consent/c-1/_history/3'],
    ]) {
      expect(`${method} ${upstream}${path} ${forwarded(upstream, method, path)}`).toBe(`${method} ${upstream}${path} false`);
    }
  });
});
