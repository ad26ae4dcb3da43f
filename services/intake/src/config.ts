import { BaseConfig, IntSetting, OptionalText } from '@clinical-ledger/platform';
import { IsIn, IsOptional, IsString, Matches } from 'class-validator';

const TENANT = '[a-z0-9][a-z0-9-]{0,62}';

/**
 * Intake's environment. Every variable is documented in services/intake/README.md.
 */
export class IntakeConfig extends BaseConfig {
  override SERVICE_NAME = 'intake';

  /** MLLP listener (HL7 v2). 0 picks a free port (tests); the port is logged. */
  @IntSetting(0, 65535) INTAKE_MLLP_PORT = 2575;

  @IsString()
  INTAKE_MLLP_HOST = '0.0.0.0';

  /** Extra MLLP ports pinned to one tenant each: "2576=st-marys,2577=city-general". */
  @IsOptional() @Matches(new RegExp(`^(\\d{1,5}=${TENANT})(,\\d{1,5}=${TENANT})*$`), {
    message: 'must be port=tenant pairs separated by commas, e.g. 2576=st-marys',
  })
  INTAKE_MLLP_PORT_TENANTS?: string;

  /** TLS for MLLP: PEM certificate chain and key; with a CA file, clients must present a certificate. */
  @OptionalText() INTAKE_MLLP_TLS_CERT_FILE?: string;

  @OptionalText() INTAKE_MLLP_TLS_KEY_FILE?: string;

  @OptionalText() INTAKE_MLLP_TLS_CA_FILE?: string;

  /** Largest HL7 message (MLLP frame payload) in bytes; larger ones are answered AE. */
  @IntSetting(1024, 64 * 1024 * 1024) INTAKE_MAX_MESSAGE_BYTES = 512 * 1024;

  /** Idle MLLP connections are closed after this many ms (0 = never). */
  @IntSetting(0) INTAKE_MLLP_IDLE_TIMEOUT_MS = 10 * 60_000;

  @IntSetting(1) INTAKE_MLLP_MAX_CONNECTIONS = 1000;

  /**
   * Bytes of HL7 held in memory across all MLLP connections (unfinished frames, frames waiting or
   * being stored). A finished frame that would pass it is answered AR at once (resend later); a
   * connection whose unfinished frame passes it is closed.
   */
  @IntSetting(64 * 1024) INTAKE_MLLP_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

  /** Sending facility (MSH-4.1) -> tenant: "FAC1=st-marys,FAC2=city-general". */
  @IsOptional() @Matches(new RegExp(`^([^=,\\s][^=,]*=${TENANT})(,[^=,\\s][^=,]*=${TENANT})*$`), {
    message: 'must be FACILITY=tenant pairs separated by commas, e.g. FAC1=st-marys',
  })
  INTAKE_FACILITY_TENANTS?: string;

  /** Tenant for HL7 messages from facilities not in INTAKE_FACILITY_TENANTS (none: they are rejected). */
  @IsOptional() @Matches(new RegExp(`^${TENANT}$`), { message: 'must be a tenant id ([a-z0-9-], max 63)' })
  INTAKE_DEFAULT_TENANT?: string;

  /**
   * JSON file {"tenant": "<base64 secret>"}: the per-tenant keys of patient pseudonyms. Read at
   * start (a bad file stops the start); a tenant without a secret gets every message refused with
   * a clear error until one is configured.
   */
  @OptionalText() INTAKE_PSEUDONYM_SECRETS_FILE?: string;

  /** Assigning authority (PID-3.4.1) -> identifier system: "HOSP=urn:oid:1.2.3,LAB=http://lab.example/mrn". */
  @IsOptional() @Matches(/^([^=,\s][^=,]*=[^=,\s]+)(,[^=,\s][^=,]*=[^=,\s]+)*$/, {
    message: 'must be AUTHORITY=system pairs separated by commas',
  })
  INTAKE_ASSIGNING_AUTHORITIES?: string;

  /** IANA time zone of HL7 timestamps sent without an offset. */
  @IsString()
  INTAKE_HL7_TIMEZONE = 'UTC';

  /** MSH-11 processing ids accepted (P production, T training, D debugging). */
  @Matches(/^[A-Z](,[A-Z])*$/, { message: 'must be processing ids separated by commas, e.g. P,T' })
  INTAKE_HL7_PROCESSING_IDS = 'P,T,D';

  /**
   * When an answer is positive: `durable` once JetStream has stored the event (default),
   * `receipt` once the ledger has appended it and published its receipt.
   */
  @IsIn(['durable', 'receipt'])
  INTAKE_ACK_MODE: 'durable' | 'receipt' = 'durable';

  /** How long to wait for JetStream's acknowledgment of a publish. */
  @IntSetting(100) INTAKE_PUBLISH_TIMEOUT_MS = 5000;

  /**
   * Events waiting for JetStream's PubAck at once (all channels). Past it, intake answers "resend
   * later" at once (HTTP 503 + Retry-After, MLLP AR) instead of queueing while NATS is slow.
   */
  @IntSetting(1) INTAKE_MAX_INFLIGHT_PUBLISHES = 512;

  /** How long to wait for the ledger's receipt (INTAKE_ACK_MODE=receipt). */
  @IntSetting(100) INTAKE_RECEIPT_TIMEOUT_MS = 15_000;

  /** Retry-After (seconds) on HTTP 503 while JetStream is unavailable. */
  @IntSetting(1) INTAKE_RETRY_AFTER_SECONDS = 5;

  /**
   * An HL7 control id (MSH-10, from the same facility) reused for a different message: `reject`
   * answers AE (ERR-3 205, duplicate key); `accept` records it as an event of its own (its id then
   * includes the content digest) and says so in the answer.
   */
  @IsIn(['reject', 'accept'])
  INTAKE_CONTROL_ID_REUSE: 'reject' | 'accept' = 'reject';

  /** How long the control id registry remembers a control id's content. */
  @IntSetting(1, 3650) INTAKE_CONTROL_ID_TTL_DAYS = 90;

  /** Largest HTTP request body in bytes. */
  @IntSetting(1024) INTAKE_HTTP_MAX_BODY_BYTES = 4 * 1024 * 1024;
}

/** "a=b,c=d" -> {a: b, c: d}. */
export function parsePairs(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) out[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return out;
}
