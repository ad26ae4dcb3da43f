import { Get, Inject, Param, Query, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiProduces, ApiQuery } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Access, Admission, Admitted, CONFIG } from '@clinical-ledger/platform';
import type { AuditConfig } from '../config';
import { LIVE_EVENT_TYPES } from './live.hub';
import { LiveSessions, parseTypes, type LiveFilter } from './live-sessions';
import { AuditApiController, TenantParam } from '../http/params';

/**
 * The live streams over Server-Sent Events (the WebSocket twin is live.gateway.ts): the bearer
 * header authenticates like every other route, the access table admits, LiveSessions does the rest.
 */
@AuditApiController()
export class SseController {
  constructor(
    private readonly sessions: LiveSessions,
    @Inject(CONFIG) private readonly config: AuditConfig,
  ) {}

  @Get('stream')
  @Access('audit.stream')
  @ApiOperation({
    summary: 'Live stream (Server-Sent Events) of the tenant: receipt, checkpoint, verified, access, alert, ack and verify messages; the recent past first',
    description: 'Bearer auth in the Authorization header (use a fetch-based SSE client). `?types=receipt,alert` narrows it. Live means best-effort: the API is the record.',
  })
  @ApiQuery({ name: 'types', required: false, description: LIVE_EVENT_TYPES.join(',') })
  @ApiProduces('text/event-stream')
  async stream(@TenantParam() tenant: string, @Req() req: Request, @Res() res: Response, @Query('types') types?: string): Promise<void> {
    await this.serve(req, res, { tenant, types: parseTypes(types) });
  }

  @Get('patients/:subject/access/stream')
  @Access('audit.stream.patient')
  @ApiOperation({
    summary: "Live stream (Server-Sent Events) of one patient's access log: its recent entries, then each new one as the audit service projects it",
    description: 'A patient token (claim `patient`) reaches only its own pseudonym. Messages are `access` events (AccessLogEntry).',
  })
  @ApiParam({ name: 'subject', description: 'Patient pseudonym' })
  @ApiProduces('text/event-stream')
  async patientStream(@Admitted() admission: Admission, @TenantParam() tenant: string, @Param('subject') subject: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    admission.check({ patient: subject });
    await this.serve(req, res, { tenant, patient: subject, types: new Set(['access'] as const) });
  }

  private async serve(req: Request, res: Response, filter: LiveFilter): Promise<void> {
    let release: () => void;
    try {
      release = this.sessions.reserve(filter.tenant);
    } catch (err) {
      res.setHeader('Retry-After', '10');
      throw err;
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    let id = 0;
    const write = (event: string, data: unknown) => res.write(`id: ${++id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 3000\n\n');
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), this.config.AUDIT_SSE_HEARTBEAT_MS);
    let close: () => void;
    try {
      close = await this.sessions.start(
      filter,
      {
        send: (m) => write(m.type, m.recent ? { ...m.data, recent: true } : m.data),
        buffered: () => res.writableLength,
        end: () => {
          clearInterval(heartbeat);
          res.end();
        },
      },
      release,
      (hello) => write('hello', hello),
      );
    } catch {
      // Headers are out: the session ended the stream (the store did not answer for the recent past); the client reconnects.
      return;
    }
    req.on('close', close);
    res.on('error', close);
    if (req.destroyed) close();
  }
}
