/**
 * Why a JetStream publish did not end in a PubAck. Every publisher error says whether the message
 * may be stored all the same (`maybeStored`): a resend with the same msgID is then deduplicated.
 */
export abstract class PublishError extends Error {
  abstract readonly code: string;
  constructor(
    message: string,
    readonly maybeStored: boolean,
  ) {
    super(message);
  }
}

/** NATS is away (or too many publishes wait already): nothing was sent, nothing stored. */
export class PublishUnavailableError extends PublishError {
  readonly code = 'PUBLISH_UNAVAILABLE';
  constructor(
    /** `disconnected`: NATS is away; `busy`: `waiting` requests already wait for JetStream. */
    readonly reason: 'disconnected' | 'busy',
    readonly waiting = 0,
  ) {
    super(reason === 'busy' ? `JetStream is slow: ${waiting} requests are already waiting for it; nothing was sent` : 'JetStream is not reachable; nothing was sent', false);
    this.name = 'PublishUnavailableError';
  }
}

/** Sent, but JetStream did not confirm it (timeout, dropped connection, refusal): it may be stored. */
export class PublishUnconfirmedError extends PublishError {
  readonly code = 'PUBLISH_UNCONFIRMED';
  constructor(message: string, cause?: unknown) {
    super(message, /timeout|dropped|closed|disconnect/i.test(message));
    this.name = 'PublishUnconfirmedError';
    this.cause = cause;
  }
}

/** The message is larger than the server's max_payload: resending it unchanged cannot help. */
export class MessageTooLargeError extends PublishError {
  readonly code = 'MESSAGE_TOO_LARGE';
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`the message is ${bytes} bytes, more than the message bus takes (${limit} bytes)`, false);
    this.name = 'MessageTooLargeError';
  }
}
