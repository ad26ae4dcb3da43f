import { encodeCore, type EntryCore, type Signer } from '@clinical-ledger/chain';
import { eventHeader, type LedgerEvent } from '@clinical-ledger/contracts';
import { bin, entryId, type EntryDoc } from '@clinical-ledger/ledger-store';
import type { TailDraft } from './tail';

/**
 * The entry of `event` after the end of `draft`, in its stored form: the canonical core (event
 * header, payload digest, link to the previous leaf), its leaf hash, signature and the tree nodes
 * it completes. The draft moves over it.
 */
export async function nextEntry(chain: string, draft: TailDraft, event: LedgerEvent, payloadDigest: string, signer: Signer, recordedAt: string): Promise<EntryDoc> {
  const seq = draft.size;
  const core: EntryCore = {
    v: 1,
    chain,
    seq,
    prev: draft.prev,
    event: eventHeader(event) as unknown as Record<string, unknown>,
    payload: { digest: payloadDigest, enc: 'A256GCM' },
    recordedAt,
    kid: signer.kid,
  };
  const enc = encodeCore(core);
  const signature = await signer.sign(enc.leafHash);
  const nodes = draft.append(enc.leafHash);
  return {
    _id: entryId(chain, seq),
    chain,
    seq,
    eventId: event.id,
    core: bin(enc.bytes),
    leafHash: bin(enc.leafHash),
    signature: bin(signature),
    kid: signer.kid,
    recordedAt,
    nodes: nodes.map(bin),
    ...(event.subject !== undefined ? { subject: event.subject } : {}),
    type: event.type,
    dataclass: event.dataclass,
  };
}
