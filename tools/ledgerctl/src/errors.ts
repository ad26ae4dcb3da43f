// Typed errors of ledgerctl. Every failure the tool reports on purpose is a CliError: a stable
// `code` (for --json and scripts) and the process exit status it maps to.

/** Exit statuses: scripts branch on these, so they never change meaning. */
export const EXIT = {
  /** Everything verified. */
  OK: 0,
  /** Verification ran and failed (bad entry, signature, root, proof, checkpoint). */
  VERIFY_FAILED: 1,
  /** Bad command line or bad local input (key string, unreadable or malformed file). */
  USAGE: 2,
  /** The ledger could not be asked: unreachable, refused the token (401/403), or answered an error. */
  LEDGER: 3,
  /** NATS could not be reached, refused the credentials, or refused a change (`streams init`). */
  NATS: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad arguments or local input: a bad key string, a missing file, a malformed export. */
export class InputError extends CliError {
  constructor(code: string, message: string) {
    super(code, message, EXIT.USAGE);
  }
}

/** The ledger could not answer what was asked (network, auth, HTTP error, malformed answer). */
export class LedgerError extends CliError {
  constructor(
    code: 'LEDGER_UNREACHABLE' | 'LEDGER_TIMEOUT' | 'LEDGER_UNAUTHORIZED' | 'LEDGER_FORBIDDEN' | 'LEDGER_NOT_FOUND' | 'LEDGER_HTTP_ERROR' | 'LEDGER_BAD_RESPONSE',
    message: string,
    readonly status?: number,
  ) {
    super(code, message, EXIT.LEDGER);
  }
}

/** NATS could not do what `streams init` asked: unreachable, credentials or permissions refused, a change refused. */
export class NatsError extends CliError {
  constructor(code: 'NATS_UNREACHABLE' | 'NATS_REFUSED' | 'NATS_REFUSED_CHANGE', message: string) {
    super(code, message, EXIT.NATS);
  }
}
