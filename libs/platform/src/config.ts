import 'reflect-metadata';
import { plainToInstance, Transform } from 'class-transformer';
import {
  getMetadataStorage,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  ValidateIf,
  Max,
  Min,
  validateSync,
} from 'class-validator';

/** A configuration problem found at start: names every bad variable, never its (maybe secret) value. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const toInt = ({ value }: { value: unknown }) => (value === undefined || value === '' ? undefined : Number(value));

/**
 * A whole-number variable of at least `min` (and at most `max`): the environment's text is read as
 * a number, so `HTTP_PORT=x` is a ConfigError naming the variable, not NaN. One line per setting:
 * `@IntSetting(1) LEDGER_BATCH_MAX = 1_000;`.
 */
export function IntSetting(min: number, max?: number): PropertyDecorator {
  // Applied in the order a stack `@Transform(toInt) @IsInt() @Min(min) @Max(max)` is (bottom-up).
  const stack = [Transform(toInt), IsInt(), Min(min), ...(max === undefined ? [] : [Max(max)])].reverse();
  return (target, key) => {
    for (const d of stack) d(target, key as string);
  };
}

/** Delays in milliseconds, comma-separated (a JetStream consumer's nak backoff by delivery number; the last repeats). */
export function DelayList(): PropertyDecorator {
  return Matches(/^\d+(,\d+)*$/);
}

/** An optional text variable (a file path, a list parsed later by its reader). */
export function OptionalText(): PropertyDecorator {
  return (target, key) => {
    IsString()(target, key as string);
    IsOptional()(target, key as string);
  };
}

/**
 * What every service reads from its environment. Field names are the variable names, so a
 * validation message names exactly the variable an operator must fix.
 */
export class BaseConfig {
  @IsString() @IsNotEmpty()
  SERVICE_NAME = 'service';

  @IsString() @IsNotEmpty()
  HTTP_HOST = '0.0.0.0';

  @IntSetting(0, 65535) HTTP_PORT = 8080;

  @Matches(/^(nats|tls|wss?):\/\/[^\s,]+(,(nats|tls|wss?):\/\/[^\s,]+)*$/, {
    message: 'must be one or more nats://host:port URLs separated by commas',
  })
  NATS_URL = 'nats://127.0.0.1:4222';

  /** Subject/stream namespace; empty in production. */
  @IsOptional() @Matches(/^[a-z0-9_-]*$/)
  NATS_NAMESPACE = '';

  /** NATS credentials file (JWT + nkey) for accounts with per-service permissions. */
  @IsOptional() @IsString()
  NATS_CREDS_FILE?: string;

  /** NATS user of a server-configured `authorization` block (deploy/nats/nats-server.conf); with NATS_PASSWORD_FILE. */
  @IsOptional() @Matches(/^[A-Za-z0-9_-]{1,64}$/, { message: 'must be a NATS user name of [A-Za-z0-9_-]' })
  NATS_USER?: string;

  /** File holding that user's password (read at connect, never logged). */
  @IsOptional() @IsString()
  NATS_PASSWORD_FILE?: string;

  /**
   * Prefix of this service's reply inboxes (request/reply, JetStream PubAcks and pulled messages),
   * default `_INBOX_<SERVICE_NAME>`: NATS permissions give each service only its own, so no other
   * service can read its replies or the messages it pulls.
   */
  @IsOptional() @Matches(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, { message: 'must be a subject prefix without wildcards, e.g. _INBOX_ledger' })
  NATS_INBOX_PREFIX?: string;

  /**
   * Whether this service declares the streams at connect (create, or update what may change).
   * Operators who declare streams themselves, and deny services that right, set false.
   */
  @IsIn(['true', 'false'])
  NATS_MANAGE_STREAMS = 'true';

  /** Stream replicas (3 in a production NATS cluster, 1 on a single server). */
  @IntSetting(1, 5) NATS_STREAM_REPLICAS = 1;

  /**
   * LEDGER_APPEND drops a message not acked within this many hours: the backstop that keeps
   * plain patient data off the bus if the ledger never records it. Longer than any ledger outage
   * you want to ride out (a message in a transient retry is held, not dropped, until then).
   */
  @IntSetting(1, 24 * 365) NATS_APPEND_MAX_AGE_HOURS = 168;

  /** Dead letters older than this many hours are dropped (0 = kept until replayed or erased). */
  @IntSetting(0) NATS_DEAD_LETTER_MAX_AGE_HOURS = 0;

  @Matches(/^mongodb(\+srv)?:\/\/\S+$/, { message: 'must be a mongodb:// or mongodb+srv:// URL' })
  MONGO_URL = 'mongodb://127.0.0.1:27017/';

  @Matches(/^[A-Za-z0-9_-]{1,63}$/, { message: 'must be a database name of [A-Za-z0-9_-]' })
  MONGO_DB = 'clinical_ledger';

  /**
   * Longest wait for the answer to one MongoDB command before its connection is dropped and the
   * command fails (retried by the caller). Without it, a command sent as the server died could wait
   * for an answer for good (after FerretDB's kill -9, a find stayed unanswered over 100 s: issue 16);
   * a crashed host that never resets its connections does the same. Above the slowest command.
   */
  @IntSetting(1_000) MONGO_SOCKET_TIMEOUT_MS = 30_000;

  @IsIn(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
  LOG_LEVEL = 'info';

  /** JWT verification (see auth.ts): one of these must be set. */
  @IsOptional() @IsString()
  AUTH_HS256_SECRET_FILE?: string;

  @IsOptional() @IsString()
  AUTH_PUBLIC_KEY_FILE?: string;

  @IsOptional() @IsIn(['EdDSA', 'ES256', 'RS256', 'PS256'])
  AUTH_ALGORITHM?: string;

  @IsOptional() @IsString()
  AUTH_JWKS_FILE?: string;

  @IsOptional() @Matches(/^https?:\/\/\S+$/)
  AUTH_JWKS_URL?: string;

  /** Required with NODE_ENV=production: a token must name who issued it and for whom. */
  @ValidateIf((c: BaseConfig) => c.NODE_ENV === 'production' || c.AUTH_ISSUER !== undefined)
  @IsString() @IsNotEmpty({ message: 'required with NODE_ENV=production (tokens must name their issuer)' })
  AUTH_ISSUER?: string;

  @ValidateIf((c: BaseConfig) => c.NODE_ENV === 'production' || c.AUTH_AUDIENCE !== undefined)
  @IsString() @IsNotEmpty({ message: 'required with NODE_ENV=production (tokens minted for other applications must not pass)' })
  AUTH_AUDIENCE?: string;

  /**
   * Longest lifetime a bearer token may have, in seconds (exp − iat, or exp − now without iat):
   * a stolen long-lived token is a standing credential. 12 h covers a clinical shift.
   */
  @IntSetting(60) AUTH_MAX_TOKEN_LIFETIME_S = 12 * 60 * 60;

  /** `production` turns on the checks development may skip (issuer and audience required). */
  @IsOptional() @IsString()
  NODE_ENV?: string;

  /** Roles that count as clinical for record reads (docs/ACCESS-MODEL.md), comma-separated. */
  @IsString() @IsNotEmpty()
  ACCESS_CLINICAL_ROLES = 'clinician,nurse';

  /**
   * This service's own bearer token (a `service` JWT) for the requests it makes to other
   * services over NATS: they check it like any caller's. Re-read when the file changes.
   */
  @IsOptional() @IsString()
  SERVICE_TOKEN_FILE?: string;

  /** Milliseconds SIGTERM waits for in-flight work before closing connections. */
  @IntSetting(0) SHUTDOWN_GRACE_MS = 10_000;
}

/** Reads and validates configuration from the environment; throws ConfigError at the first start. */
export function loadConfig<T extends BaseConfig>(cls: new () => T, env: NodeJS.ProcessEnv = process.env): T {
  const defaults = new cls();
  const plain: Record<string, unknown> = {};
  // Declared variables: those with defaults and the optional ones only validators know about.
  const declared = getMetadataStorage()
    .getTargetValidationMetadatas(cls, '', true, false)
    .map((m) => m.propertyName);
  for (const key of new Set([...Object.keys(defaults), ...declared])) {
    const v = env[key];
    const fallback = (defaults as unknown as Record<string, unknown>)[key];
    if (v !== undefined && v !== '') plain[key] = v;
    else if (fallback !== undefined) plain[key] = fallback;
  }
  const config = plainToInstance(cls, plain);
  const errors = validateSync(config, { forbidUnknownValues: true });
  if (errors.length) {
    throw new ConfigError(
      errors.map((e) => ({ variable: e.property, message: Object.values(e.constraints ?? {}).join('; ') })),
    );
  }
  return config;
}
