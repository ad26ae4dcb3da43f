// One C2SP tlog-witness (https://c2sp.org/tlog-witness), spoken to over HTTP: `add-checkpoint`
// with the old size the witness is believed to hold and a consistency proof from it. The answer is
// classified here; what to do about it (retry, alert, store) is the caller's business.
import { ConfigError } from '@clinical-ledger/platform';
import { parseCosignerKey, toBase64, verifyCosignatures, type CosignerKey, type VerifiedCosignature } from '@clinical-ledger/chain';

export interface WitnessEndpoint {
  key: CosignerKey;
  /** Submission prefix (POST `<url>/add-checkpoint`). */
  url: string;
}

/** Parses LEDGER_WITNESSES: comma-separated `<vkey> <url>` pairs. */
export function parseWitnesses(value: string, quorum: number): WitnessEndpoint[] {
  const problems: { variable: string; message: string }[] = [];
  const out: WitnessEndpoint[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [vkey, url, ...rest] = item.split(/\s+/);
    try {
      if (!url || rest.length) throw new Error('each witness is "<vkey> <url>"');
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${url}: only http(s) URLs`);
      const key = parseCosignerKey(vkey);
      if (out.some((w) => w.key.kid === key.kid)) throw new Error(`${key.kid} is listed twice`);
      out.push({ key, url: url.replace(/\/+$/, '') });
    } catch (err) {
      problems.push({ variable: 'LEDGER_WITNESSES', message: (err as Error).message });
    }
  }
  if (out.length > 0 && quorum > out.length) {
    problems.push({ variable: 'LEDGER_WITNESS_QUORUM', message: `${quorum} cosignatures can never come from ${out.length} witness(es)` });
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

export type WitnessAnswer =
  /** Cosigned: the verified cosignature(s) by this witness. */
  | { kind: 'cosigned'; cosignatures: VerifiedCosignature[] }
  /** 409 with the size the witness holds (it knows another size than we sent as old). */
  | { kind: 'conflict'; size: number }
  /** 422: the consistency proof from its size does not verify: our history is not the one it saw. */
  | { kind: 'inconsistent'; status: number; body: string }
  /** Any other refusal (unknown log, untrusted key, malformed request...). */
  | { kind: 'refused'; status: number; body: string }
  /** No answer (connection refused, timeout) or an answer we cannot use. */
  | { kind: 'unreachable'; message: string };

/** Sends one add-checkpoint request and classifies the answer. */
export async function addCheckpoint(witness: WitnessEndpoint, oldSize: number, proof: readonly Uint8Array[], note: string, timeoutMs: number): Promise<WitnessAnswer> {
  const body = `old ${oldSize}\n${proof.map((h) => `${toBase64(h)}\n`).join('')}\n${note}`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body, signal: AbortSignal.timeout(timeoutMs), headers: { 'content-type': 'text/plain; charset=utf-8' } });
    text = await res.text();
  } catch (err) {
    return { kind: 'unreachable', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
  if (res.status === 200) {
    try {
      const cosignatures = verifyCosignatures(`${note}${text}`, [witness.key]);
      if (cosignatures.length === 0) return { kind: 'unreachable', message: `200 without a cosignature by ${witness.key.kid}` };
      return { kind: 'cosigned', cosignatures };
    } catch (err) {
      return { kind: 'unreachable', message: `200 with a cosignature that does not verify: ${(err as Error).message}` };
    }
  }
  if (res.status === 409 && /^(0|[1-9][0-9]*)\n?$/.test(text)) return { kind: 'conflict', size: Number(text.trim()) };
  const snippet = text.slice(0, 300).trim();
  if (res.status === 422) return { kind: 'inconsistent', status: res.status, body: snippet };
  return { kind: 'refused', status: res.status, body: snippet };
}
