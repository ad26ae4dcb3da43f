import { gzipSync } from 'node:zlib';
import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { assertTenant, CurrentPrincipal, Principal, Public, RequireRoles } from '@clinical-ledger/platform';
import { badRequest, ReadService } from '../read/read.service';
import { parseTilePath, TilePathError, type TileRef } from './tile-path';
import { TileService, type TileResult } from './tile.service';
import { ChainRoute } from '../http/chain-route';

/** Full tiles, and partial tiles at a given width, never change (RFC 8246 immutable). */
const IMMUTABLE = 'max-age=31536000, immutable';

function segments(path: unknown): string[] {
  // Express 5 hands a named wildcard over as its segments; accept a joined string as well.
  if (Array.isArray(path)) return path.map(String);
  return typeof path === 'string' ? path.split('/') : [];
}

function parse(path: unknown, prefix: string[] = []): TileRef {
  try {
    return parseTilePath([...prefix, ...segments(path)]);
  } catch (err) {
    if (err instanceof TilePathError) throw badRequest('tile', err.reason);
    throw err;
  }
}

/**
 * The C2SP tlog-tiles API (https://c2sp.org/tlog-tiles) of each chain, under
 * /v1/chains/<tenant>/tlog/: `checkpoint`, hash tiles `tile/<L>/<N>[.p/<W>]` and entry bundles
 * `tile/entries/<N>[.p/<W>]`, readable by any standard tile client.
 *
 * The checkpoint and hash tiles are public: they hold the tree size and SHA-256 hashes of entry
 * cores (each core names a random event id and a ciphertext digest, so a hash cannot be matched
 * to a guessed event), which is what witnesses and verifiers need. Entry bundles are the chain's
 * metadata (patient pseudonyms, event types, times): like /entries they need a token of the
 * hospital with the auditor, admin or service role. See docs/ACCESS-MODEL.md (the ledger.tlog.* rows).
 */
@ApiTags('tlog-tiles')
@Controller('v1/chains/:tenant/tlog')
export class TilesController {
  constructor(
    private readonly tiles: TileService,
    private readonly reads: ReadService,
  ) {}

  @Public()
  @ChainRoute('ledger.tlog.checkpoint', 'C2SP checkpoint: the latest stored signed checkpoint note (text/plain)')
  @Get('checkpoint')
  @ApiProduces('text/plain')
  async checkpoint(@Param('tenant') tenant: string, @Res() res: Response): Promise<void> {
    const cp = await this.reads.latestCheckpoint(tenant);
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    // Mutable: a few seconds at most (the spec's advice).
    res.setHeader('Cache-Control', 'public, max-age=2');
    res.send(cp.note);
  }

  @Get('tile/entries/*path')
  @ChainRoute('ledger.tlog.entries', 'C2SP entry bundle: uint16-length-prefixed stored entry cores (each hashes to the level-0 tile hash)')
  @ApiBearerAuth()
  @RequireRoles('auditor', 'admin', 'service')
  @ApiParam({ name: 'path', description: '<N>[.p/<W>], N as x-prefixed 3-digit elements', example: '000.p/12' })
  @ApiProduces('application/octet-stream')
  async entries(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string, @Param('path') path: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    assertTenant(p, tenant);
    const ref = parse(path, ['entries']);
    this.send(req, res, await this.tiles.tile(tenant, ref), 'private', true);
  }

  @Public()
  @ChainRoute('ledger.tlog.tiles', 'C2SP hash tile: 32-byte Merkle tree hashes at level 8L')
  @Get('tile/*path')
  @ApiParam({ name: 'path', description: '<L>/<N>[.p/<W>]', example: '0/x001/234.p/7' })
  @ApiProduces('application/octet-stream')
  async hashTile(@Param('tenant') tenant: string, @Param('path') path: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const ref = parse(path);
    if (ref.level === 'entries') throw badRequest('tile', 'entry bundles are under tile/entries/');
    this.send(req, res, await this.tiles.tile(tenant, ref), 'public', false);
  }

  private send(req: Request, res: Response, tile: TileResult, scope: 'public' | 'private', compress: boolean): void {
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Cache-Control', `${scope}, ${IMMUTABLE}`);
    // Entry bundles compress well (the spec asks for it); hash tiles are random bytes.
    if (compress) {
      res.setHeader('Vary', 'Accept-Encoding');
      if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
        res.setHeader('Content-Encoding', 'gzip');
        res.send(gzipSync(tile.data));
        return;
      }
    }
    res.send(Buffer.from(tile.data.buffer, tile.data.byteOffset, tile.data.byteLength));
  }
}
