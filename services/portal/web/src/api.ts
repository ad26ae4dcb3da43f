// The app's calls, all same-origin through the portal shell, with the patient's bearer token.
import { callJson, fetchOk, storedToken, tokenClaims, type CallInit, type OidcSettings } from '@clinical-ledger/browser';
import type { ConsentChangeData, ConsentTerms } from '@clinical-ledger/contracts/consent';

const TOKEN_KEY = 'portal.token';

export interface Session {
  token: string;
  tenant: string;
  patient: string;
}

/** Reads the claims the app needs for its URLs (the services verify the token; the app only reads it). */
function claims(token: string): Session | undefined {
  const body = tokenClaims(token);
  if (typeof body?.['tenant'] === 'string' && typeof body['patient'] === 'string') return { token, tenant: body['tenant'], patient: body['patient'] };
  return undefined;
}

/** A sign-in link carries the token in the fragment (never sent to a server or logged); it moves to sessionStorage. */
export function session(): Session | undefined {
  const t = storedToken(TOKEN_KEY);
  return t ? claims(t) : undefined;
}

/** Keeps the token the OIDC provider issued, for this tab only (as a link's token is kept). */
export function keepToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** The shell's `/config.json`: the keys the app pins, and the OIDC provider when sign-in goes there. */
export interface AppConfig {
  hospitalKeys: string[];
  witnessKeys: string[];
  oidc?: OidcSettings;
}

let config: Promise<AppConfig> | undefined;

export function appConfig(): Promise<AppConfig> {
  config ??= fetch('/config.json').then((r) => r.json() as Promise<AppConfig>);
  return config;
}

export { ApiError, type CallInit } from '@clinical-ledger/browser';

export function api<T>(s: Session, path: string, init: CallInit = {}): Promise<T> {
  return callJson<T>(`/api/${path}`, s.token, init);
}

/** A non-JSON answer (checkpoint text, tile bytes), as bytes. */
export async function apiBytes(s: Session, path: string): Promise<Uint8Array> {
  return new Uint8Array(await (await fetchOk(`/api/${path}`, s.token)).arrayBuffer());
}

export const enc = encodeURIComponent;

/** The ledger's answers, typed by its API contract (type-only: nothing of the lib enters the bundle). */
export type { PatientEvent, PatientEventsView, RecordReadResult } from '@clinical-ledger/contracts/ledger-api';

/** One entry of the patient's access log, as audit answers and streams it. */
export type { AccessLogEntry as AccessEntry } from '@clinical-ledger/contracts/audit';

/** A consent as the app shows it, read from its FHIR Consent resource. */
export interface Consent extends Omit<ConsentTerms, 'status'>, Pick<ConsentChangeData, 'period'> {
  versionId: string;
  /** As the server sent it (FHIR Consent.status). */
  status: string;
  /** The resource as the server sent it: a revocation sends it back with status inactive. */
  resource: FhirConsent;
}

type Coding = { system?: string; code?: string };
export interface FhirConsent {
  resourceType: 'Consent';
  id?: string;
  meta?: { versionId?: string };
  status: string;
  patient: { identifier: { system: string; value: string } };
  provision: {
    type: 'permit' | 'deny';
    period?: { start?: string; end?: string };
    actor?: { role?: { coding?: Coding[] }; reference?: { identifier?: { system?: string; value?: string } } }[];
    purpose?: Coding[];
    class?: Coding[];
  };
}

export const FHIR = 'application/fhir+json';
const ROLE_SYSTEM = 'urn:clinical-ledger:role';

export function fromFhirConsent(r: FhirConsent): Consent {
  const actors = r.provision.actor ?? [];
  const codes = (list?: Coding[]) => (list ?? []).map((c) => c.code ?? '').filter(Boolean);
  return {
    consentId: r.id ?? '',
    versionId: r.meta?.versionId ?? '',
    status: r.status,
    provision: r.provision.type,
    actors: actors.filter((a) => !a.role?.coding?.some((c) => c.system === ROLE_SYSTEM)).map((a) => a.reference?.identifier?.value ?? '').filter(Boolean),
    roles: actors.flatMap((a) => (a.role?.coding ?? []).filter((c) => c.system === ROLE_SYSTEM).map((c) => c.code ?? '')).filter(Boolean),
    purposes: codes(r.provision.purpose),
    dataclasses: codes(r.provision.class),
    ...(r.provision.period ? { period: r.provision.period } : {}),
    resource: r,
  };
}

/** "Dr. Li may see your lab results for treatment until 1 March", as a FHIR Consent. */
export function grantConsent(patient: string, actor: string, purpose: string, dataclass: string | undefined, end: string | undefined): FhirConsent {
  return {
    resourceType: 'Consent',
    status: 'active',
    patient: { identifier: { system: 'urn:clinical-ledger:pseudonym', value: patient } },
    provision: {
      type: 'permit',
      ...(end ? { period: { end } } : {}),
      actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { identifier: { system: 'urn:clinical-ledger:actor', value: actor } } }],
      purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: purpose }],
      ...(dataclass ? { class: [{ system: 'urn:clinical-ledger:dataclass', code: dataclass }] } : {}),
    },
  };
}
