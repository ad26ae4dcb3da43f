import { Transform } from 'class-transformer';
import { IsBoolean, IsEmpty, IsIn, IsNotEmpty, IsOptional, IsString, Matches, ValidateIf } from 'class-validator';
import { BaseConfig, DelayList, IntSetting, OptionalText } from '@clinical-ledger/platform';


/** What one ledger process does (docs/DEVELOPING.md "Ledger roles"). */
export const LEDGER_ROLES = ['all', 'writer', 'reader'] as const;
export type LedgerRole = (typeof LEDGER_ROLES)[number];

const isReader = (c: LedgerConfig) => c.LEDGER_ROLE === 'reader';
const NO_SECRETS_ON_READERS = { message: '$property must not be set with LEDGER_ROLE=reader: a reader holds no signing key and no KEK' };

/** The ledger's variables (services/ledger/README.md explains each). */
export class LedgerConfig extends BaseConfig {
  override SERVICE_NAME = 'ledger';

  /**
   * `writer`: appends (consumes LEDGER_APPEND), signs checkpoints, holds the signing key and the
   * KEK, answers consent-gated record reads and the dead-letter admin routes; no public read API.
   * `reader`: entries, proofs, stored checkpoints and tiles with public keys only; record reads
   * are forwarded to a writer over NATS. `all`: both in one process (development, `npm run up`).
   */
  @IsIn(LEDGER_ROLES)
  LEDGER_ROLE: LedgerRole = 'all';

  /** Signing key: a C2SP signer key ("PRIVATE+KEY+name+hash+key") or a PKCS#8 Ed25519 PEM. */
  @IsOptional() @IsString() @ValidateIf(isReader) @IsEmpty(NO_SECRETS_ON_READERS)
  LEDGER_SIGNING_KEY_FILE?: string;

  /** Key name for a PEM signing key (C2SP key names: no spaces, no "+"). */
  @Matches(/^[^\s+]{1,64}$/)
  LEDGER_SIGNING_KEY_NAME = 'clinical-ledger';

  /**
   * Public keys that verify (a file or a directory of files, one C2SP verifier key a line): on a
   * writer the older keys after a rotation; on a reader all of them, the current one first
   * (required in production; in development a reader falls back to the dev writer's public key).
   */
  @ValidateIf((c: LedgerConfig) => !!c.LEDGER_VERIFIER_KEYS || (isReader(c) && c.NODE_ENV === 'production'))
  @IsString() @IsNotEmpty({ message: '$property is required with LEDGER_ROLE=reader in production: the public keys to verify with' })
  LEDGER_VERIFIER_KEYS?: string;

  /** Key-encryption key: 32 bytes, raw or as 64 hex digits or base64. */
  @IsOptional() @IsString() @ValidateIf(isReader) @IsEmpty(NO_SECRETS_ON_READERS)
  LEDGER_KEK_FILE?: string;

  /** Without key files (development only, never with NODE_ENV=production): keys generated once and kept here. */
  @OptionalText() LEDGER_DEV_KEYS_DIR?: string;

  /** Checkpoint origin is `<prefix>/<tenant>`. */
  @Matches(/^[^\s]{1,200}$/)
  LEDGER_ORIGIN_PREFIX = 'clinical-ledger';

  /** A checkpoint after this many new entries ... */
  @IntSetting(1) LEDGER_CHECKPOINT_EVERY = 1_000;

  /** ... or after this many milliseconds with new entries, whichever comes first. */
  @IntSetting(50) LEDGER_CHECKPOINT_INTERVAL_MS = 5_000;

  /** Most events in one batch of a chain (one payload insert, one ordered entry insert). */
  @IntSetting(1, 10_000) LEDGER_BATCH_MAX = 1_000;

  /** How long a batch waits for more events once the first arrived (0: the messages of the current pull). */
  @IntSetting(0, 1_000) LEDGER_BATCH_LINGER_MS = 0;

  /** Batches in the append pipeline at once across all chains (a lone chain uses 2; busy chains then share them in larger batches). */
  @IntSetting(1, 1_000) LEDGER_BATCHES_IN_FLIGHT = 2;

  /**
   * Messages handled at once (pulled, not yet acked): three full batches, one being written, one
   * prepared, one getting its lookups and receipts. With two, the batch in its finish held a third
   * of them and batches shrank to ~670.
   */
  @IntSetting(1, 10_000) LEDGER_MAX_IN_FLIGHT = 3_000;

  /** Durable consumer name on LEDGER_APPEND. */
  @Matches(/^[A-Za-z0-9_-]{1,64}$/)
  LEDGER_DURABLE = 'ledger';

  /** Only these tenants (comma-separated) — a partition of the chains; empty = all. */
  @IsOptional() @Matches(/^([a-z0-9][a-z0-9-]{0,62})(,[a-z0-9][a-z0-9-]{0,62})*$|^$/)
  LEDGER_TENANTS = '';

  /**
   * One writer per chain through NATS KV leases (src/lease): a replica appends to a chain only while
   * it holds the chain's lease, each chain with its own durable consumer (`<LEDGER_DURABLE>_<tenant>`)
   * pulled by its holder only; chains spread over the live replicas. false: one writer process (or a
   * static LEDGER_TENANTS partition) with the shared durable LEDGER_DURABLE.
   */
  @Transform(({ value }: { value: unknown }) => value === true || value === 'true') @IsBoolean()
  LEDGER_LEASES = false;

  /** A lease not renewed for this long expires and its chain moves to another replica. */
  @IntSetting(1_000, 600_000) LEDGER_LEASE_TTL_MS = 10_000;

  /** How often a replica looks for chains to take (new chains, expired leases, a changed replica count). */
  @IntSetting(100, 60_000) LEDGER_LEASE_SCAN_MS = 1_000;

  /** This replica's name in the leases, the metric and /v1/chains (default: host name and pid; on Kubernetes the pod name). */
  @IsOptional() @Matches(/^[A-Za-z0-9_-]{1,100}$/)
  LEDGER_REPLICA_ID?: string;

  /** Deliveries at which a message whose own handling keeps failing is dead-lettered (outages do not count). */
  @IntSetting(1, 100) LEDGER_MAX_DELIVER = 5;

  /**
   * The consumer's server-side max_deliver (at least LEDGER_MAX_DELIVER): deliveries that ended with
   * no verdict (the process crashed or stopped mid-message) count here; at the bound the message is
   * moved to the dead letters.
   */
  @IntSetting(1, 1_000) LEDGER_CRASH_BOUND = 10;

  @IntSetting(1_000) LEDGER_ACK_WAIT_MS = 30_000;

  /** Nak delays by delivery number. */
  @DelayList() LEDGER_NAK_BACKOFF_MS = '250,1000,5000,15000';

  /**
   * Longest wait between two in-hand retries of a message while the store or NATS is away: how soon
   * appends resume once the outage ends (the nak backoff's 15 s step made a 4 s store crash stall a
   * chain for 25 s). A retry of a whole batch costs one failed store call.
   */
  @IntSetting(50, 60_000) LEDGER_RETRY_MAX_DELAY_MS = 1_000;

  /** Recent receipts kept per chain (duplicates answered without a store read; at least 1: a lost race settles through it). */
  @IntSetting(1) LEDGER_RECEIPT_CACHE = 50_000;

  /**
   * Memory for all chains' receipt caches together, in MiB (about 400 bytes a receipt): each chain
   * this writer holds keeps its equal share, at most LEDGER_RECEIPT_CACHE (a duplicate it misses costs
   * one indexed lookup). 0: no budget, every chain keeps LEDGER_RECEIPT_CACHE (~19 MiB a chain at 50,000).
   */
  @IntSetting(0) LEDGER_RECEIPT_CACHE_MB = 0;

  /**
   * Longest a writer's warm-up at start may take (src/append/warm-up.service.ts): store connections
   * opened, the append path run on throwaway events, recent chains' state and data keys loaded,
   * before /readyz says ready and before the first append. A bound, not a wait: it ends when its
   * work is done (bench/ledger/duplicates-bench.ts, 3 chains of 10^4 entries, 2 cores: 5.1-7.1 s at
   * load 4-6, 9.4-9.8 s at load 20, most of it the data keys; without chains 1.5 s). At load 17-20
   * the connections and the CPU part alone took 2-2.3 s, which left 3 s no time for the keys. 0: none.
   */
  @IntSetting(0, 60_000) LEDGER_WARM_UP_MS = 10_000;

  /** Store connections the warm-up opens (the first batches and duplicate lookups otherwise wait for their handshakes). */
  @IntSetting(0, 100) LEDGER_WARM_CONNECTIONS = 64;

  /**
   * Most of one core (percent) the warm-up's throwaway events take: the rest of the time it rests,
   * so that a replica starting beside running writers (a rolling upgrade on shared cores) leaves
   * them the CPU their batches need. 100: as fast as it can (a turn of the event loop now and then).
   */
  @IntSetting(5, 100) LEDGER_WARM_CPU_PERCENT = 50;

  /**
   * Newest entries of each warmed chain whose patients' data keys the warm-up loads (those used
   * within the key cache's 5 minutes; a restarted writer's next events for them otherwise wait for a
   * key read each in their batch). One point read per entry and per key. 0: none.
   */
  @IntSetting(0, 100_000) LEDGER_WARM_KEY_ENTRIES = 1_000;

  /**
   * A read replica loads its chains' leaf hash tiles into memory in the background once it is ready
   * (src/tiles/tile-warm-up.service.ts; bounded by the store's leaf tile cache, 4,096 tiles, 64 MiB),
   * so proofs find them there. false: tiles are read as proofs ask for them.
   */
  @Transform(({ value }: { value: unknown }) => value === true || value === 'true') @IsBoolean()
  LEDGER_TILE_WARM_UP = true;

  /**
   * With leases, how long after /readyz says ready the tile warm-up waits: a writer takes its chains
   * as it becomes ready (a rolling upgrade's hand-overs), and its first batches should not share the
   * store and the event loop with tile reads. Without leases the warm-up starts at readiness.
   */
  @IntSetting(0, 600_000) LEDGER_TILE_WARM_UP_LEASED_DELAY_MS = 10_000;

  /** How long a record read waits for consent.decide before answering 503. */
  @IntSetting(50) LEDGER_CONSENT_TIMEOUT_MS = 2_000;

  /** How long a record read waits for its access entry to be on the chain before answering 503. */
  @IntSetting(100) LEDGER_ACCESS_TIMEOUT_MS = 10_000;

  /**
   * How often cached data keys are checked against the chains' key epochs (an erasure in another
   * process drops them here within this time; every use is fenced regardless).
   */
  @IntSetting(50, 60_000) LEDGER_KEY_CACHE_CHECK_MS = 1_000;

  /** Crash tests only, refused with NODE_ENV=production: the ledger SIGKILLs itself at this point. */
  @IsOptional() @IsIn(['erasure-after-intent', 'erasure-after-entry'])
  LEDGER_FAULT_INJECT?: 'erasure-after-intent' | 'erasure-after-entry';

  /**
   * C2SP tlog-witnesses that cosign each checkpoint: comma-separated `<witness vkey> <submission URL>`
   * pairs (the vkey is the witness's cosignature/v1 key, `<name>+<hash>+<base64>`). Empty: no witnessing.
   */
  @OptionalText() LEDGER_WITNESSES = '';

  /** Cosignatures a checkpoint needs before it is stored and published as cosigned. */
  @IntSetting(1, 100) LEDGER_WITNESS_QUORUM = 1;

  /** How long one add-checkpoint request may take. */
  @IntSetting(100) LEDGER_WITNESS_TIMEOUT_MS = 5_000;

  /** How often a witness that is behind (down, refusing) is sent the latest checkpoint again. */
  @IntSetting(100) LEDGER_WITNESS_RETRY_MS = 10_000;

  /** Mongo collection prefix. */
  @Matches(/^[A-Za-z0-9_]{0,32}$/)
  LEDGER_COLLECTION_PREFIX = 'ledger_';

  /**
   * Only when the store is FerretDB: the insert batch it was started with (`--test-batch-size`;
   * FerretDB's default 100). Entries go in as ordered inserts of at most this many (and at most
   * 500), because FerretDB keeps an insert's order only within one batch. Never set it above the
   * server's: past a duplicate (two writers racing) FerretDB would store the entries after it. The
   * embedded stores (`npm run up`, the tests) start FerretDB with 1,000 and set it.
   */
  @IntSetting(1, 100_000) FERRETDB_INSERT_BATCH = 100;
}

export function backoffList(config: LedgerConfig): number[] {
  return config.LEDGER_NAK_BACKOFF_MS.split(',').map(Number);
}

/** The checkpoint origin line of a tenant's chain. */
export function originFor(config: LedgerConfig, tenant: string): string {
  return `${config.LEDGER_ORIGIN_PREFIX}/${tenant}`;
}

export function tenantList(config: LedgerConfig): string[] {
  return config.LEDGER_TENANTS ? config.LEDGER_TENANTS.split(',') : [];
}
