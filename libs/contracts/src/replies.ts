/**
 * How every NATS request/reply responder answers a failure: the HTTP status the same failure has
 * on HTTP, a stable code, a message, and the details of the code (e.g. `errors` of invalid input).
 * A successful answer never has a string `error` field.
 */
export interface ErrorReply {
  error: string;
  message: string;
  status: number;
  /** `invalid_input`: the fields that failed. */
  errors?: { field: string; message: string }[];
  [detail: string]: unknown;
}
