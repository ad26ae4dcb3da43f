// What the console reads: the audit API's types from libs/contracts (types only: nothing of it is bundled).
export type { AccessLogEntry, AuditAlert, CheckpointVerified } from '@clinical-ledger/contracts/audit';
export type * from '@clinical-ledger/contracts/audit-api';
