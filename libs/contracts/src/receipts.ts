/** What the ledger answers for an appended event, on `ledger.entry.<tenant>` and over HTTP. */
export interface Receipt {
  tenant: string;
  seq: number;
  eventId: string;
  /** Hex leaf hash: the entry's identity in the Merkle tree. */
  leafHash: string;
  /** Base64 Ed25519 signature over the 32-byte leaf hash. */
  signature: string;
  kid: string;
  recordedAt: string;
  /** True when the event had been recorded before (a redelivery or a resend). */
  duplicate?: boolean;
}

/** A signed C2SP checkpoint as published on `ledger.checkpoint.<tenant>`. */
export interface CheckpointMessage {
  tenant: string;
  size: number;
  /** Hex root hash. */
  rootHash: string;
  /** The whole signed note text (C2SP tlog-checkpoint + signed-note), with witness cosignatures once cosigned. */
  note: string;
  /** Present on a cosigned checkpoint: kids of the witnesses whose cosignature/v1 lines are on `note`. */
  cosignedBy?: string[];
}
