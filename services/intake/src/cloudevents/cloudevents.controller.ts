import { Body, Controller, Headers, Post, Req, Res, UseFilters, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiExtraModels, ApiOperation, ApiResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import { DATACONTENTTYPE_MESSAGE, DATACONTENTTYPE_PATTERN, ILL_FORMED_TEXT_MESSAGE, illFormedTextPath, InvalidInputError, LedgerEvent, MissingSecretError, Pseudonymizer, validateInput } from '@clinical-ledger/contracts';
import { Access, CurrentPrincipal, Principal, senderSource, ServiceContext } from '@clinical-ledger/platform';
import { canonicalString } from '@clinical-ledger/chain';
import type { Response } from 'express';
import { BodyReaderInterceptor, type CloudEventsBody, RequestWithBody } from '../http/body-reader.interceptor';
import { IntakeErrorsFilter } from '../http/errors.filter';
import { requestTenant } from '../http/tenant';
import { cloudEventId } from '../pipeline/event-ids';
import { ControlIdRegistry } from '../pipeline/control-ids';
import { EventIdReuseError } from '../pipeline/errors';
import { Accepted, LedgerPublisher } from '../pipeline/ledger-publisher';
import { IntakeConfig } from '../config';
import { CloudEventInDto, KNOWN_ATTRIBUTES } from './cloudevent.dto';

/** The source FHIR intake stamps on what a token sent (libs/platform senderSource). */
const SENDER_PREFIX = 'urn:fhir:client:';

const STRUCTURED = 'application/cloudevents+json';
const BATCH = 'application/cloudevents-batch+json';

/**
 * CloudEvents 1.0 over HTTP: structured mode (application/cloudevents+json), batch mode
 * (application/cloudevents-batch+json, all or nothing on validation) and binary mode (ce-*
 * headers, the body is the data in its own content type).
 */
@ApiTags('CloudEvents')
@ApiBearerAuth()
@ApiExtraModels(CloudEventInDto)
@UseFilters(IntakeErrorsFilter)
@UseInterceptors(BodyReaderInterceptor)
@Controller('events')
export class CloudEventsController {
  constructor(
    private readonly service: ServiceContext<IntakeConfig>,
    private readonly publisher: LedgerPublisher,
    private readonly pseudonyms: Pseudonymizer,
    private readonly controlIds: ControlIdRegistry,
  ) {}

  @Post()
  @Access('intake.submit')
  @ApiOperation({ summary: 'Submit a CloudEvent (structured, batch or binary mode)' })
  @ApiConsumes(STRUCTURED, BATCH, 'application/json', 'text/plain')
  @ApiBody({ schema: { oneOf: [{ $ref: getSchemaPath(CloudEventInDto) }, { type: 'array', items: { $ref: getSchemaPath(CloudEventInDto) } }] } })
  @ApiResponse({ status: 201, description: 'Stored: {eventId, duplicate, streamSeq, receipt?}' })
  @ApiResponse({ status: 200, description: 'Already stored (a resend), or a batch result' })
  @ApiResponse({ status: 400, description: '{error, message, errors: [{field, message}]}' })
  @ApiResponse({ status: 403, description: 'The event names another tenant' })
  @ApiResponse({ status: 409, description: 'source + id already used for a different event (INTAKE_CONTROL_ID_REUSE=reject)' })
  @ApiResponse({ status: 503, description: 'JetStream unavailable: Retry-After; resending is safe' })
  async submit(@Body() body: CloudEventsBody, @Req() req: RequestWithBody, @Headers() headers: Record<string, string | undefined>, @CurrentPrincipal() principal: Principal, @Res() res: Response): Promise<void> {
    const mediaType = req.rawMediaType?.mediaType ?? '';
    if (mediaType === BATCH) {
      if (!Array.isArray(body) || body.length === 0) throw new InvalidInputError([{ field: '(body)', message: 'a batch must be a non-empty JSON array of CloudEvents' }]);
      const events = body.map((item, i) => this.prepare(item, principal, `[${i}]`));
      const results: Accepted[] = [];
      for (const e of events) results.push(await this.store(e));
      res.status(200).json(results.map(view));
      return;
    }
    const plain = mediaType === STRUCTURED ? body : this.fromBinary(headers, body, req.rawMediaType?.mediaType);
    const accepted = await this.store(this.prepare(plain, principal, ''));
    res.setHeader('X-Event-Id', accepted.eventId);
    res.status(accepted.duplicate ? 200 : 201).json(view(accepted));
  }

  /** Binary mode: attributes from ce-* headers, data = the body, datacontenttype = Content-Type. */
  private fromBinary(headers: Record<string, string | undefined>, body: unknown, mediaType: string | undefined): Record<string, unknown> {
    const attrs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!name.startsWith('ce-') || value === undefined) continue;
      try {
        // CloudEvents HTTP binding: header values are percent-encoded.
        attrs[name.slice(3)] = decodeURIComponent(value);
      } catch {
        throw new InvalidInputError([{ field: name, message: 'is not a valid percent-encoded value' }]);
      }
    }
    if (!('specversion' in attrs)) {
      throw new InvalidInputError([{ field: 'ce-specversion', message: `binary mode needs ce-* headers; structured mode needs Content-Type ${STRUCTURED}` }]);
    }
    if (headers['content-type']) attrs['datacontenttype'] = headers['content-type'];
    else if (mediaType) attrs['datacontenttype'] = mediaType;
    attrs['data'] = body;
    return attrs;
  }

  private prepare(plain: unknown, principal: Principal, at: string): PreparedCloudEvent {
    const field = (name: string) => `${at}${at && !name.startsWith('[') ? '.' : ''}${name}`;
    // The hospital first: a token of another one learns nothing, not even what is wrong with the event.
    if (typeof plain === 'object' && plain !== null && typeof (plain as Record<string, unknown>)['tenant'] === 'string') requestTenant(principal, (plain as Record<string, string>)['tenant']);
    // Text that is not well-formed Unicode has no place on the chain, nor in the encrypted data.
    const illFormed = illFormedTextPath(plain);
    if (illFormed) throw new InvalidInputError([{ field: field(illFormed), message: ILL_FORMED_TEXT_MESSAGE }]);
    if (typeof plain === 'object' && plain !== null && !Array.isArray(plain)) {
      const unknown = Object.keys(plain).filter((k) => !KNOWN_ATTRIBUTES.includes(k));
      if (unknown.length) {
        throw new InvalidInputError(unknown.map((k) => ({ field: `${at}${at ? '.' : ''}${k}`, message: `attribute "${k}" is not carried by the ledger envelope (known: ${KNOWN_ATTRIBUTES.join(', ')})` })));
      }
    }
    let ce: CloudEventInDto;
    try {
      ce = validateInput(CloudEventInDto, plain);
    } catch (err) {
      if (err instanceof InvalidInputError && at) throw new InvalidInputError(err.errors.map((e) => ({ ...e, field: `${at}.${e.field}` })));
      throw err;
    }
    const tenant = requestTenant(principal, ce.tenant);
    // `urn:fhir:client:<sub>` is how the ledger tells what an integration token sent (its receipts):
    // a CloudEvent may claim that source only for the token's own sub.
    if (ce.source.startsWith(SENDER_PREFIX) && ce.source !== senderSource(principal.actor)) {
      throw new InvalidInputError([{ field: field('source'), message: `${SENDER_PREFIX}<sub> names the sending token: only ${senderSource(principal.actor)} may be used with this token` }]);
    }
    if (!this.pseudonyms.has(tenant)) throw new MissingSecretError(tenant);
    let subject = ce.subject;
    if (ce.patientid) {
      const bar = ce.patientid.indexOf('|');
      const pseudonym = this.pseudonyms.patient(tenant, ce.patientid.slice(0, bar), ce.patientid.slice(bar + 1));
      if (subject && subject !== pseudonym) {
        throw new InvalidInputError([{ field: `${at}${at ? '.' : ''}subject`, message: 'subject and patientid name different patients' }]);
      }
      subject = pseudonym;
    }
    // The data is encrypted under the patient's key; with no patient it could never be erased.
    if (!subject) {
      throw new InvalidInputError([
        { field: field('subject'), message: 'the event carries data but names no patient: give patientid ("system|value") or subject (an intake pseudonym); without a patient its data could never be erased' },
      ]);
    }
    const event: LedgerEvent = {
      specversion: '1.0',
      id: cloudEventId(tenant, ce.source, ce.id),
      source: ce.source,
      type: ce.type,
      time: ce.time ? new Date(ce.time).toISOString() : new Date().toISOString(),
      tenant,
      dataclass: ce.dataclass,
      data: ce.data,
    };
    if (subject) event.subject = subject;
    if (ce.datacontenttype) {
      const media = mediaTypeOf(ce.datacontenttype);
      if (!media) throw new InvalidInputError([{ field: field('datacontenttype'), message: `datacontenttype ${DATACONTENTTYPE_MESSAGE}` }]);
      event.datacontenttype = media;
    }
    // What the sender's source + id stand for: everything of the event the sender chose (the time
    // only when the sender gave one: intake's arrival time differs on every resend).
    const content = canonicalString({ type: event.type, subject, dataclass: event.dataclass, datacontenttype: event.datacontenttype ?? null, time: ce.time ?? null, data: ce.data });
    return { event, source: ce.source, senderId: ce.id, contentDigest: this.pseudonyms.digest(tenant, 'ce-content', content), at };
  }

  private async store(prepared: PreparedCloudEvent): Promise<Accepted> {
    const { event } = prepared;
    // CloudEvents: source + id identify an event. The same pair with other content is not a
    // resend: refused (409) or, with INTAKE_CONTROL_ID_REUSE=accept, an event of its own.
    if ((await this.controlIds.claim(event.id, prepared.contentDigest)) === 'reuse') {
      this.service.logger.warn({ eventId: event.id, tenant: event.tenant, mode: this.service.config.INTAKE_CONTROL_ID_REUSE }, 'CloudEvent id reused for different content');
      if (this.service.config.INTAKE_CONTROL_ID_REUSE === 'reject') {
        throw new EventIdReuseError(`${prepared.at}${prepared.at ? '.' : ''}id`, 'source and id were already used for a different event; a resend must be identical, a new event needs a new id');
      }
      event.id = cloudEventId(event.tenant, prepared.source, `${prepared.senderId}\0${prepared.contentDigest}`);
    }
    const accepted = await this.publisher.submit(event, 'clinical');
    this.service.logger.info({ eventId: event.id, tenant: event.tenant, type: event.type, dataclass: event.dataclass, duplicate: accepted.duplicate }, 'CloudEvent accepted');
    return accepted;
  }
}

/**
 * A media type as the envelope carries it: type/subtype in lower case and the charset, if any;
 * other parameters are dropped (they describe the data, and may carry anything). Undefined when
 * it is not a media type at all.
 */
export function mediaTypeOf(value: string): string | undefined {
  const [type = '', ...params] = value.split(';');
  const charset = params.map((p) => /^\s*charset\s*=\s*"?([A-Za-z0-9._-]{1,32})"?\s*$/i.exec(p)?.[1]).find((c) => c !== undefined);
  const media = `${type.trim().toLowerCase()}${charset ? `; charset=${charset.toLowerCase()}` : ''}`;
  return DATACONTENTTYPE_PATTERN.test(media) ? media : undefined;
}

interface PreparedCloudEvent {
  event: LedgerEvent;
  source: string;
  senderId: string;
  /** Keyed digest of what the sender chose (control id reuse). */
  contentDigest: string;
  /** Where it sat in a batch ("[2]"), '' alone. */
  at: string;
}

function view(a: Accepted): Record<string, unknown> {
  return { eventId: a.eventId, duplicate: a.duplicate, stream: a.stream, streamSeq: a.streamSeq, ...(a.receipt ? { receipt: a.receipt } : {}) };
}
