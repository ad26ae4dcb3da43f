/** JetStream (or the ledger, in receipt mode) could not take the event now: the sender should retry. */
export class TemporarilyUnavailableError extends Error {
  readonly code = 'TEMPORARILY_UNAVAILABLE';
  constructor(
    message: string,
    /** True when the event may already be on the append stream (a retry is deduplicated). */
    readonly maybeStored = false,
  ) {
    super(message);
    this.name = 'TemporarilyUnavailableError';
  }
}

/** The event would exceed what the message bus carries: resending it unchanged will not help. */
export class EventTooLargeError extends Error {
  readonly code = 'EVENT_TOO_LARGE';
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`the event is ${bytes} bytes, more than the message bus takes (${limit} bytes)`);
    this.name = 'EventTooLargeError';
  }
}

/** An event id the sender already used for different content (CloudEvents source + id). */
export class EventIdReuseError extends Error {
  readonly code = 'EVENT_ID_REUSED';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'EventIdReuseError';
  }
}

/** No tenant for this sender: a configuration matter, named clearly. */
export class UnknownTenantError extends Error {
  readonly code = 'UNKNOWN_TENANT';
  constructor(message: string) {
    super(message);
    this.name = 'UnknownTenantError';
  }
}
