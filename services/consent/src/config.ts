import { BaseConfig, IntSetting, OptionalText } from '@clinical-ledger/platform';
import { IsIn, IsOptional, Matches } from 'class-validator';


export class ConsentConfig extends BaseConfig {
  override SERVICE_NAME = 'consent';

  /**
   * The hospital's policy when no consent applies: `deny` (default) or `permit-treatment`
   * (purposes TREAT and ETREAT are permitted, everything else denied).
   */
  @IsIn(['deny', 'permit-treatment'])
  CONSENT_DEFAULT: 'deny' | 'permit-treatment' = 'deny';

  /** Roles that may break the glass (comma-separated). */
  @Matches(/^[a-z]+(,[a-z]+)*$/, { message: 'must be a comma-separated list of roles' })
  CONSENT_BREAKGLASS_ROLES = 'clinician,nurse';

  /** How long a consent change waits for the ledger's receipt before answering 202 (pending). */
  @IntSetting(100, 120_000) CONSENT_RECEIPT_TIMEOUT_MS = 10_000;

  /**
   * How often changes still waiting for their receipt (after a restart, say) are looked up at the
   * ledger (needs CONSENT_LEDGER_URL and CONSENT_LEDGER_TOKEN_FILE).
   */
  @IntSetting(100) CONSENT_SWEEP_INTERVAL_MS = 15_000;

  /**
   * The per-hospital pseudonym secrets (JSON {tenant: base64 secret}: the same file intake reads),
   * for consents that name a patient by a raw identifier. Unset: callers send the pseudonym.
   */
  @OptionalText() CONSENT_PSEUDONYM_SECRETS_FILE?: string;

  /**
   * Rebuilding the projection from the chain (and the sweeper): the ledger's HTTP base URL (its
   * entries pages, receipts and consent-gated record read) ...
   */
  @IsOptional() @Matches(/^https?:\/\/\S+$/, { message: 'must be the ledger\'s http(s) base URL' })
  CONSENT_LEDGER_URL?: string;

  /** ... with this service's bearer JWT (role `service`; re-read at every use, so it can rotate). */
  @OptionalText() CONSENT_LEDGER_TOKEN_FILE?: string;
}
