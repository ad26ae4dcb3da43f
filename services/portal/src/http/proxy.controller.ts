import { All, BadGatewayException, Controller, ForbiddenException, Inject, NotFoundException, OnModuleDestroy, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Access, CONFIG, CurrentPrincipal, type Principal, RequireRoles } from '@clinical-ledger/platform';
import { PortalConfig } from '../config';

type Upstream = 'ledger' | 'consent' | 'audit';

interface Route {
  upstream: Upstream;
  method: 'GET' | 'POST' | 'PUT';
  pattern: RegExp;
  /** A live stream (SSE): passed through as it comes, for as long as the app keeps it open. */
  live?: true;
}

const SEG = '[A-Za-z0-9._:~%-]+';
/**
 * The few upstream routes the app uses, and nothing else. Each upstream still decides (own-patient
 * rules of docs/ACCESS-MODEL.md); this list only keeps the shell from being an open relay.
 */
export const ROUTES: Route[] = [
  { upstream: 'ledger', method: 'GET', pattern: new RegExp(`^/v1/chains/${SEG}/patients/${SEG}/events$`) },
  { upstream: 'ledger', method: 'GET', pattern: new RegExp(`^/v1/chains/${SEG}/events/${SEG}$`) },
  { upstream: 'ledger', method: 'GET', pattern: new RegExp(`^/v1/chains/${SEG}/records/${SEG}$`) },
  // The public C2SP checkpoint and hash tiles the phone builds its inclusion proofs from (never entry bundles).
  { upstream: 'ledger', method: 'GET', pattern: new RegExp(`^/v1/chains/${SEG}/tlog/checkpoint$`) },
  { upstream: 'ledger', method: 'GET', pattern: new RegExp(`^/v1/chains/${SEG}/tlog/tile/[0-9]{1,2}/(?:x[0-9]{3}/)*[0-9]{3}(?:\\.p/[0-9]{1,3})?$`) },
  { upstream: 'audit', method: 'GET', pattern: new RegExp(`^/v1/audit/${SEG}/patients/${SEG}/access$`) },
  { upstream: 'audit', method: 'GET', pattern: new RegExp(`^/v1/audit/${SEG}/patients/${SEG}/access/stream$`), live: true },
  // The consent service's FHIR Consent API: search, create, update (a revocation is status inactive).
  { upstream: 'consent', method: 'GET', pattern: /^\/fhir\/r4\/Consent$/ },
  { upstream: 'consent', method: 'POST', pattern: /^\/fhir\/r4\/Consent$/ },
  { upstream: 'consent', method: 'PUT', pattern: new RegExp(`^/fhir/r4/Consent/${SEG}$`) },
];

const MAX_BODY = 64 * 1024;

async function readBody(req: Request): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ForbiddenException({ error: 'body_too_large', message: `request bodies are limited to ${MAX_BODY} bytes` });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Same-origin forwarding of the patient's requests to ledger, consent and audit with the patient's
 * own bearer token (see README: why a proxy rather than CORS). Only patient tokens pass.
 */
@ApiExcludeController()
@Access('portal.proxy')
@RequireRoles('patient')
@Controller('api')
export class ProxyController implements OnModuleDestroy {
  /** Open live streams: cut at shutdown, or the HTTP server would wait for them forever. */
  private readonly streams = new Set<AbortController>();

  constructor(@Inject(CONFIG) private readonly config: PortalConfig) {}

  onModuleDestroy(): void {
    for (const s of this.streams) s.abort();
  }

  @All(':upstream/*path')
  async forward(@CurrentPrincipal() p: Principal, @Req() req: Request, @Res() res: Response): Promise<void> {
    const m = /^\/api\/(ledger|consent|audit)(\/[^?]*)(\?.*)?$/.exec(req.originalUrl);
    const route = m && ROUTES.find((r) => r.upstream === m[1] && r.method === req.method && r.pattern.test(m[2]));
    if (!m || !route) throw new NotFoundException({ error: 'not_found', message: 'the portal forwards only the routes its app uses' });
    if (!p.patient) throw new ForbiddenException({ error: 'forbidden', message: 'a patient token is needed' });
    const patient = p.patient;
    const base = { ledger: this.config.PORTAL_LEDGER_URL, consent: this.config.PORTAL_CONSENT_URL, audit: this.config.PORTAL_AUDIT_URL }[route.upstream];
    const headers: Record<string, string> = { authorization: req.headers.authorization ?? '', accept: req.headers.accept ?? 'application/json' };
    if (typeof req.headers['if-match'] === 'string') headers['if-match'] = req.headers['if-match'];
    if (route.upstream === 'ledger') await this.assertOwnEvent(base, m[2], patient, headers.authorization);
    if (req.headers['content-type']) headers['content-type'] = req.headers['content-type'];
    // A live stream lasts until the app (or shutdown) ends it; everything else gets 15 s.
    const live = route.live ? new AbortController() : undefined;
    let upstream: globalThis.Response;
    try {
      upstream = await fetch(`${base.replace(/\/$/, '')}${m[2]}${m[3] ?? ''}`, {
        method: req.method,
        headers,
        ...(req.method === 'POST' || req.method === 'PUT' ? { body: new Uint8Array(await readBody(req)) } : {}),
        signal: live ? live.signal : AbortSignal.timeout(15_000),
      });
    } catch (e) {
      throw new BadGatewayException({ error: 'upstream_unavailable', upstream: route.upstream, message: e instanceof Error ? e.message : String(e) });
    }
    res.status(upstream.status);
    const type = upstream.headers.get('content-type');
    if (type) res.setHeader('content-type', type);
    res.setHeader('Cache-Control', 'no-store');
    if (live && upstream.ok && upstream.body && type?.startsWith('text/event-stream')) return this.pass(live, upstream.body, res);
    res.send(Buffer.from(await upstream.arrayBuffer()));
  }

  /** Writes each chunk of a live stream as it arrives; the app leaving (or shutdown) ends both sides. */
  private async pass(live: AbortController, body: ReadableStream<Uint8Array>, res: Response): Promise<void> {
    this.streams.add(live);
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    const stop = () => live.abort();
    res.on('close', stop); // the response's close: the connection ended (a request's close may come as soon as its body is read)
    try {
      for await (const chunk of body) res.write(chunk);
    } catch {
      /* aborted: the app left, or the portal is stopping */
    } finally {
      res.off('close', stop);
      this.streams.delete(live);
      res.end();
    }
  }

  /**
   * Defence in depth for "nothing of another patient, whatever the URL says": a ledger route that
   * names an event is forwarded only when that event's subject is this token's patient.
   */
  private async assertOwnEvent(base: string, path: string, patient: string, authorization: string): Promise<void> {
    const fromPath = /\/(?:events|records)\/([^/]+)$/.exec(path)?.[1];
    if (fromPath === undefined) return;
    const eventId = decodeURIComponent(fromPath);
    const tenant = /^\/v1\/chains\/([^/]+)\//.exec(path)?.[1] ?? '';
    let subject: unknown;
    try {
      const r = await fetch(`${base.replace(/\/$/, '')}/v1/chains/${tenant}/events/${encodeURIComponent(eventId)}`, { headers: { authorization, accept: 'application/json' }, signal: AbortSignal.timeout(15_000) });
      if (r.status === 404) throw new NotFoundException({ error: 'not_found', message: 'no such record' });
      subject = r.ok ? ((await r.json()) as { core?: { event?: { subject?: unknown } } }).core?.event?.subject : undefined;
    } catch (e) {
      if (e instanceof NotFoundException) throw e;
      throw new BadGatewayException({ error: 'upstream_unavailable', upstream: 'ledger', message: e instanceof Error ? e.message : String(e) });
    }
    if (subject !== patient) throw new ForbiddenException({ error: 'forbidden', message: "a patient token reaches only its own patient's records" });
  }
}
