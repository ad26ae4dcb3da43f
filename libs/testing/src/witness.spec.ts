import { Ed25519Signer, Frontier, leafHash, parseCosignerKey, signCheckpoint, toBase64, verifyCosignatures } from '@clinical-ledger/chain';
import { onlyLoopback, startWitness, witnessLogsYaml, type LocalWitness } from './witness';

jest.setTimeout(120_000);

/** The omniwitness harness: a real witness on loopback that cosigns our checkpoints. */
describe('startWitness (transparency-dev omniwitness)', () => {
  const log = Ed25519Signer.generate('harness-log');
  const origin = 'clinical-ledger/harness';
  let witness: LocalWitness;

  beforeAll(async () => {
    witness = await startWitness({ name: 'harness-witness', logs: [{ origin, vkey: log.verifierKey }] });
  });
  afterAll(async () => {
    await witness?.remove();
  });

  async function addCheckpoint(oldSize: number, proof: Uint8Array[], note: string): Promise<{ status: number; body: string; type: string | null }> {
    const body = `old ${oldSize}\n${proof.map((p) => `${toBase64(p)}\n`).join('')}\n${note}`;
    const res = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body });
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
  }

  it('writes the log config omniwitness reads', () => {
    expect(witnessLogsYaml([{ origin: 'a/b', vkey: 'k+1+x' }])).toBe('Logs:\n  - Origin: "a/b"\n    PublicKey: "k+1+x"\n');
  });

  it('cosigns a first checkpoint, answers 409 with its size for a stale old size, and dials nothing beyond loopback', async () => {
    const f = Frontier.empty();
    for (let i = 0; i < 3; i++) f.append(leafHash(Buffer.from(`leaf ${i}`)));
    const note = await signCheckpoint({ origin, size: 3, rootHash: f.root() }, [log]);
    const first = await addCheckpoint(0, [], note);
    expect(first.status).toBe(200);
    const cosigned = verifyCosignatures(`${note}${first.body}`, [parseCosignerKey(witness.vkey)]);
    expect(cosigned.map((c) => c.name)).toEqual(['harness-witness']);

    const stale = await addCheckpoint(0, [], note);
    expect(stale).toMatchObject({ status: 409, body: '3\n', type: 'text/x.tlog.size' });

    // A log it was not told about is refused (this omniwitness answers 500 where the spec says 404),
    // and so is a checkpoint signed by another key (spec: 403).
    const other = Ed25519Signer.generate('harness-log');
    expect((await addCheckpoint(0, [], await signCheckpoint({ origin: 'elsewhere', size: 3, rootHash: f.root() }, [log]))).status).toBeGreaterThanOrEqual(400);
    expect((await addCheckpoint(3, [], await signCheckpoint({ origin, size: 3, rootHash: f.root() }, [other]))).status).toBeGreaterThanOrEqual(400);

    const sockets = witness.sockets();
    expect(sockets.length).toBeGreaterThan(0);
    expect(sockets.filter((s) => s.state === 'LISTEN').map((s) => s.local).sort()).toEqual(
      [new URL(witness.url).host, new URL(witness.metricsUrl).host].sort(),
    );
    expect(onlyLoopback(sockets)).toBe(true);
  });
});
