import { generateCosignerKey } from '@clinical-ledger/chain';
import { ConfigError } from '@clinical-ledger/platform';
import { parseWitnesses } from './witness-client';

describe('LEDGER_WITNESSES', () => {
  const a = generateCosignerKey('regulator');
  const b = generateCosignerKey('auditor');

  it('reads "<vkey> <url>" pairs', () => {
    const ws = parseWitnesses(` ${a.vkey} http://127.0.0.1:1/ , ${b.vkey}   https://w.example/sub `, 2);
    expect(ws.map((w) => [w.key.name, w.url])).toEqual([
      ['regulator', 'http://127.0.0.1:1'],
      ['auditor', 'https://w.example/sub'],
    ]);
    expect(parseWitnesses('', 1)).toEqual([]);
  });

  it('names the variable for a bad key, a missing URL, a duplicate or an impossible quorum', () => {
    const problems = (value: string, quorum = 1) => {
      try {
        parseWitnesses(value, quorum);
      } catch (e) {
        return e instanceof ConfigError ? e.problems : [];
      }
      return [];
    };
    expect(problems('nonsense http://x')).toEqual([{ variable: 'LEDGER_WITNESSES', message: expect.stringMatching(/COSIGNATURE_BAD_KEY/) }]);
    expect(problems(a.vkey)).toEqual([{ variable: 'LEDGER_WITNESSES', message: expect.stringMatching(/<vkey> <url>/) }]);
    expect(problems(`${a.vkey} ftp://x`)[0].message).toMatch(/only http/);
    expect(problems(`${a.vkey} http://x,${a.vkey} http://y`)[0].message).toMatch(/twice/);
    expect(problems(`${a.vkey} http://x`, 2)).toEqual([{ variable: 'LEDGER_WITNESS_QUORUM', message: expect.stringMatching(/2 cosignatures can never come from 1/) }]);
  });
});
