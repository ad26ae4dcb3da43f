// Calling the services' JSON APIs with a bearer token: one error type and one way to read answers.

/** A non-2xx answer: its status and its body (JSON when it parses, else the text). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    const msg = (body as { message?: unknown } | undefined)?.message;
    super(typeof msg === 'string' ? `HTTP ${status}: ${msg}` : `HTTP ${status}`);
  }
}

export interface CallInit {
  method?: string;
  body?: unknown;
  /** Content type of the JSON body, and what is accepted back unless `accept` says otherwise (FHIR routes: application/fhir+json). */
  type?: string;
  accept?: string;
  headers?: Record<string, string>;
}

/** The text of an answer as JSON when it parses (error bodies may be plain text). */
export function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** `url` with the bearer token; the parsed body, or ApiError for anything but 2xx. */
export async function callJson<T>(url: string, token: string, init: CallInit = {}): Promise<T> {
  const type = init.type ?? 'application/json';
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, accept: init.accept ?? type, ...(init.body !== undefined ? { 'content-type': type } : {}), ...init.headers },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const body = parseBody(await res.text());
  if (!res.ok) throw new ApiError(res.status, body);
  return body as T;
}

/** `url` with the bearer token, for answers that are not JSON (files, bytes); ApiError for anything but 2xx. */
export async function fetchOk(url: string, token: string): Promise<Response> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new ApiError(res.status, parseBody(await res.text()));
  return res;
}
