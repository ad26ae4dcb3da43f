// What the console reads. The wire types come from libs/contracts (types only: nothing of it is bundled).
export type { AccessLogEntry, AuditAlert, CheckpointVerified } from '@clinical-ledger/contracts/audit';

export interface MonitorStatus {
  tenant: string;
  head: { size: number; rootHash: string; verifiedAt: string } | null;
  verifiedCheckpoints: number;
  alerts: number;
  pendingAccess: number;
}
