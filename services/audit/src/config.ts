import { DelayList, IntSetting, OptionalText } from '@clinical-ledger/platform';
import { IsOptional, IsUrl, Matches } from 'class-validator';
import { ConsoleConfig } from './console/console.config';
import { TENANT_QUOTAS_PATTERN } from './live/stream-quota';

const TENANTS = /^$|^[a-z0-9][a-z0-9-]{0,62}(,[a-z0-9][a-z0-9-]{0,62})*$/;

/** The audit service's variables (services/audit/README.md explains each), the console's included. */
export class AuditConfig extends ConsoleConfig {
  override SERVICE_NAME = 'audit';

  /**
   * Public keys the monitor trusts for checkpoints and entries: C2SP verifier keys
   * ("name+hash+base64"), separated by commas or whitespace. Configured by the auditor, never
   * fetched from the ledger (that would trust the thing being audited).
   */
  @OptionalText() AUDIT_VERIFIER_KEYS?: string;

  /** The same as a file, or a directory of files: one verifier key a line, `#` comments. */
  @OptionalText() AUDIT_VERIFIER_KEYS_FILE?: string;

  /**
   * Witnesses the auditor trusts (C2SP cosignature/v1 verifier keys, separated by commas or
   * whitespace). The monitor reports which of them cosigned each checkpoint.
   */
  @OptionalText() AUDIT_WITNESS_KEYS?: string;

  /** The ledger's latest checkpoint must carry this many of their cosignatures (0: report only). */
  @IntSetting(0, 100) AUDIT_WITNESS_QUORUM = 0;

  /** Expected checkpoint origin is `<prefix>/<tenant>` (the ledger's LEDGER_ORIGIN_PREFIX). */
  @Matches(/^[^\s]{1,200}$/)
  AUDIT_ORIGIN_PREFIX = 'clinical-ledger';

  /** Tenants whose latest checkpoint is polled from the start (others once their first checkpoint is seen). */
  @Matches(TENANTS)
  AUDIT_TENANTS = '';

  /** How often the monitor asks the ledger for each tenant's latest checkpoint (0 = never). */
  @IntSetting(0) AUDIT_POLL_INTERVAL_MS = 60_000;

  /** How long a request to the ledger (entry, checkpoint, proof) may take. */
  @IntSetting(100) AUDIT_LEDGER_TIMEOUT_MS = 5_000;

  /** How often access events not yet seen on the chain are looked up again. */
  @IntSetting(100) AUDIT_PENDING_RETRY_MS = 2_000;

  /** Prefix of the durable consumer names (`<prefix>-access`, `-checkpoints`, `-alerts`). */
  @Matches(/^[A-Za-z0-9_-]{1,48}$/)
  AUDIT_DURABLE_PREFIX = 'audit';

  @IntSetting(1, 100) AUDIT_MAX_DELIVER = 10;

  /** How long a delivered message may go unacknowledged before JetStream delivers it again (a replica killed mid-message). */
  @IntSetting(1_000) AUDIT_ACK_WAIT_MS = 30_000;

  /** Nak delays by delivery number. */
  @DelayList() AUDIT_NAK_BACKOFF_MS = '1000,5000,15000,30000,60000';

  /** Most SSE clients at once on this replica, all hospitals together (each holds a connection). */
  @IntSetting(1) AUDIT_SSE_MAX_CLIENTS = 500;

  /** Most SSE clients of one hospital at once on this replica (429 beyond), unless AUDIT_SSE_TENANT_QUOTAS says otherwise. */
  @IntSetting(1) AUDIT_SSE_MAX_CLIENTS_PER_TENANT = 50;

  /** Per-hospital overrides of that quota: `tenant=limit` pairs, comma-separated (e.g. `st-marys=200,clinic-b=5`). */
  @Matches(TENANT_QUOTAS_PATTERN, { message: 'must be tenant=limit pairs separated by commas' })
  AUDIT_SSE_TENANT_QUOTAS = '';

  /** SSE keep-alive comment interval. */
  @IntSetting(1_000) AUDIT_SSE_HEARTBEAT_MS = 15_000;

  /** The ledger's HTTP base URL (its entry listing and chain head: verify jobs, the overview). Unset: those answer 503. */
  @IsOptional() @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] })
  AUDIT_LEDGER_URL?: string;

  /** The hospitals' pseudonym secrets (as intake's): a raw identifier looked up is pseudonymised with it, never stored. */
  @OptionalText() AUDIT_PSEUDONYM_SECRETS_FILE?: string;

  /** Outliers: this many distinct patients read by one actor within AUDIT_OUTLIER_WINDOW_MS. */
  @IntSetting(2) AUDIT_OUTLIER_PATIENTS = 10;

  @IntSetting(1_000) AUDIT_OUTLIER_WINDOW_MS = 10 * 60_000;

  /** Outliers: this many denials of one actor within the window. */
  @IntSetting(1) AUDIT_OUTLIER_DENIALS = 3;

  /** Mongo collection prefix. */
  @Matches(/^[A-Za-z0-9_]{0,32}$/)
  AUDIT_COLLECTION_PREFIX = 'audit_';
}

export function tenantList(config: AuditConfig): string[] {
  return config.AUDIT_TENANTS ? config.AUDIT_TENANTS.split(',') : [];
}

export function backoffList(config: AuditConfig): number[] {
  return config.AUDIT_NAK_BACKOFF_MS.split(',').map(Number);
}
