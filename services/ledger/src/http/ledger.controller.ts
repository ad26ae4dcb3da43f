import { Controller, Get, Headers, Inject, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiParam, ApiQuery, ApiTags } from '@nestjs/swagger';
import { parseTenant, type ChainHead, type ChainsView, type Receipt, type RecordReadResult } from '@clinical-ledger/contracts';
import { Access, Admission, Admitted } from '@clinical-ledger/platform';
import type { StoredChainReport } from '@clinical-ledger/ledger-store';
import { RECORD_READS, type RecordReads } from '../access/record-reads';
import { ChainOwners } from '../lease/chain-leases';
import { AppendBacklog } from '../read/append-backlog';
import { chainsView } from '../read/chain-list';
import { ChainRoute } from './chain-route';
import { badRequest, ReadService, type CheckpointView, type ConsistencyView, type EntryPage, type EntryView, type InclusionView, type PatientEventsView } from '../read/read.service';

/**
 * The ledger's HTTP read side. Each route performs one action of the access table
 * (docs/ACCESS-MODEL.md): the guard checks the token's roles and the `:tenant`; routes about one
 * entry check its patient (and sender) once it is loaded. Record payloads only leave through the
 * consent-gated /records route.
 */
@ApiTags('ledger')
@ApiBearerAuth()
@Controller('v1')
export class LedgerController {
  constructor(
    private readonly reads: ReadService,
    @Inject(RECORD_READS) private readonly records: RecordReads,
    private readonly owners: ChainOwners,
    private readonly backlog: AppendBacklog,
  ) {}

  @Access('ledger.keys')
  @Get('keys')
  @ApiOperation({ summary: 'Public keys (C2SP verifier keys) that verify entries and checkpoints, current and rotated' })
  keys(): { currentKid: string; verifierKeys: string[]; originPrefix: string } {
    return this.reads.keysView();
  }

  @Access('ledger.chains.list')
  @Get('chains')
  @ApiOperation({
    summary:
      'Every chain the token may see (its hospital\'s; all for a `*` service token): size, writer replica, lease revision, whether a writer lease is held, events waiting in LEDGER_APPEND, and the writer replicas that are up',
    description:
      "`writers` says where `writer` comes from: 'leases' (the lease bucket), 'off' (LEDGER_LEASES=false: no per-chain writer), 'unavailable' (NATS did not answer: writers unknown, `leased` null). 400 invalid_input for a bad `tenant` or `leased`; 403 for another hospital's `tenant`.",
  })
  @ApiQuery({ name: 'tenant', required: false, description: 'Only this hospital\'s chain (a hospital token sees only its own anyway)' })
  @ApiQuery({ name: 'leased', required: false, enum: ['true', 'false'], description: 'false: only the chains nobody writes now; true: only those with a writer' })
  async chains(@Admitted() access: Admission, @Query('tenant') tenant?: string, @Query('leased') leased?: string): Promise<ChainsView> {
    if (tenant !== undefined) parseTenant(tenant);
    if (leased !== undefined && leased !== 'true' && leased !== 'false') throw badRequest('leased', 'must be true or false');
    // The guard checked a named tenant against the token's; a hospital's token never lists the others.
    const own = access.principal.tenant === '*' ? undefined : access.principal.tenant;
    const only = tenant ?? own;
    // Heads, leases and the waiting events side by side; the list is served without writers or
    // waiting counts while NATS does not answer.
    const [heads, ownership, waiting] = await Promise.all([
      this.reads.chainSizes(only),
      this.owners.ownership(only).catch(() => 'unavailable' as const),
      this.backlog.waiting(only).catch(() => 'unavailable' as const),
    ]);
    return chainsView(heads, ownership, waiting, leased === undefined ? undefined : leased === 'true');
  }

  @Get('chains/:tenant')
  @ChainRoute('ledger.chain.head', 'Chain head: durable size, checkpoint origin, the latest checkpoint and (with writer leases) the replica writing it')
  async chain(@Param('tenant') tenant: string): Promise<ChainHead> {
    const latest = await this.reads.latestCheckpoint(tenant).catch(() => null);
    const head: ChainHead = { tenant, size: await this.reads.size(tenant), origin: this.reads.origin(tenant), latestCheckpoint: latest };
    // Who writes it is a lease lookup; the head is served even while NATS does not answer.
    const writer = await this.owners.writer(tenant).catch(() => undefined);
    return writer ? { ...head, writer: writer.replica, writerRevision: writer.revision } : head;
  }

  @Get('chains/:tenant/entries')
  // The whole chain's metadata (every patient's pseudonym and event types): auditors and services.
  @ChainRoute('ledger.entries.list', 'Page of stored entries in seq order (core bytes, leaf hash, signature, kid), for export and independent verification')
  @ApiQuery({ name: 'from', required: false, description: 'First seq (default 0)' })
  @ApiQuery({ name: 'limit', required: false, description: 'At most this many entries (default 500, max 1000)' })
  async entries(@Param('tenant') tenant: string, @Query('from') from?: string, @Query('limit') limit?: string): Promise<EntryPage> {
    return this.reads.entriesPage(tenant, from, limit);
  }

  @Get('chains/:tenant/patients/:subject/events')
  @ChainRoute('ledger.patient.events', "A patient's events (type, data class, time; no payload), newest first: the patient app's timeline. A patient token reads only its own.")
  @ApiParam({ name: 'subject', description: 'Patient pseudonym' })
  @ApiQuery({ name: 'limit', required: false, description: '1-500 (default 100)' })
  async patientEvents(@Admitted() access: Admission, @Param('tenant') tenant: string, @Param('subject') subject: string, @Query('limit') limit?: string): Promise<PatientEventsView> {
    access.check({ patient: subject });
    return this.reads.patientEvents(tenant, subject, limit);
  }

  @Get('chains/:tenant/entries/:seq')
  @ChainRoute('ledger.entry.read', 'Entry by seq: the hashed core (parsed and as stored bytes), leaf hash, signature, kid and receipt')
  async entryBySeq(@Admitted() access: Admission, @Param('tenant') tenant: string, @Param('seq') seq: string): Promise<EntryView> {
    return this.reads.admittedEntry(access, tenant, { seq });
  }

  @Get('chains/:tenant/events/:eventId')
  @ChainRoute('ledger.entry.read', 'Entry by event id')
  async entryByEvent(@Admitted() access: Admission, @Param('tenant') tenant: string, @Param('eventId') eventId: string): Promise<EntryView> {
    return this.reads.admittedEntry(access, tenant, { eventId });
  }

  @Get('chains/:tenant/receipts/:eventId')
  @ChainRoute('ledger.receipt.read', 'Receipt of an event (the same one published on ledger.entry.<tenant>), with the latest checkpoint (cosigned when witnessed) once one covers it')
  async receipt(@Admitted() access: Admission, @Param('tenant') tenant: string, @Param('eventId') eventId: string): Promise<Receipt & { checkpoint?: CheckpointView }> {
    const entry = await this.reads.admittedEntry(access, tenant, { eventId });
    const checkpoint = await this.reads.coveringCheckpoint(tenant, entry.seq);
    return checkpoint ? { ...entry.receipt, checkpoint } : entry.receipt;
  }

  @Get('chains/:tenant/proofs/inclusion')
  @ChainRoute(
    'ledger.proof.inclusion',
    'RFC 9162 inclusion proof of an entry (by seq or eventId) in the tree of a stored signed checkpoint, with that checkpoint',
    '404 checkpoint_not_found (with the nearest stored sizes) when `size` names no stored checkpoint; 409 not_checkpointed when the entry is newer than the latest checkpoint.',
  )
  @ApiQuery({ name: 'seq', required: false })
  @ApiQuery({ name: 'eventId', required: false })
  @ApiQuery({ name: 'size', required: false, description: 'Size of a stored checkpoint (default: the latest)' })
  async inclusion(
    @Admitted() access: Admission,
    @Param('tenant') tenant: string,
    @Query('seq') seq?: string,
    @Query('eventId') eventId?: string,
    @Query('size') size?: string,
  ): Promise<InclusionView> {
    return this.reads.admittedInclusion(access, tenant, { seq, eventId }, size);
  }

  @Get('chains/:tenant/proofs/consistency')
  @ChainRoute(
    'ledger.proof.consistency',
    'RFC 9162 consistency proof between two stored signed checkpoints `from` and `to`, with both checkpoints',
    '404 checkpoint_not_found (with the nearest stored sizes) when either size names no stored checkpoint.',
  )
  @ApiQuery({ name: 'from', required: true })
  @ApiQuery({ name: 'to', required: false, description: 'Size of a stored checkpoint (default: the latest)' })
  async consistency(@Param('tenant') tenant: string, @Query('from') from: string, @Query('to') to?: string): Promise<ConsistencyView> {
    return this.reads.consistency(tenant, from, to);
  }

  @Get('chains/:tenant/checkpoints/latest')
  @ChainRoute('ledger.checkpoint.read', 'Latest stored signed checkpoint (C2SP tlog-checkpoint note)')
  async latest(@Param('tenant') tenant: string): Promise<CheckpointView> {
    return this.reads.latestCheckpoint(tenant);
  }

  @Get('chains/:tenant/checkpoints/:size')
  @ChainRoute('ledger.checkpoint.read', 'The stored signed checkpoint at a tree size (404 checkpoint_not_found with the nearest stored sizes otherwise; nothing is signed on request)')
  async checkpointAt(@Param('tenant') tenant: string, @Param('size') size: string): Promise<CheckpointView> {
    return this.reads.checkpoint(tenant, size);
  }

  @Get('chains/:tenant/verify')
  @ChainRoute('ledger.verify', 'Verifies the stored chain from genesis (links, hashes, signatures, tree nodes, checkpoints); names the first bad seq')
  @ApiOkResponse({ description: '{ok, size, rootHash, checkpointsVerified, failure?: {seq, reason, message}}' })
  async verify(@Param('tenant') tenant: string): Promise<StoredChainReport> {
    return this.reads.verify(tenant);
  }

  @Get('chains/:tenant/records/:eventId')
  @ChainRoute(
    'ledger.record.read',
    'Consent-gated record read: asks consent.decide, records the access on the chain (durably, first), then returns the decrypted payload',
    "Clinical roles (and services) with a purpose: consent decides. A patient token reads its own patient's records only. The role is the token's (a `role` parameter is refused). 403 with the decision when consent denies; 503 when consent does not answer or the access cannot be recorded; 410 when the patient was erased.",
  )
  @ApiQuery({ name: 'purpose', required: true, description: 'HL7 v3 PurposeOfUse, e.g. TREAT, ETREAT' })
  @ApiQuery({ name: 'breakGlassReason', required: false, description: 'Emergency access reason (recorded and alerted)' })
  async record(
    @Admitted() access: Admission,
    @Param('tenant') tenant: string,
    @Param('eventId') eventId: string,
    @Query('purpose') purpose: string,
    @Query('breakGlassReason') breakGlassReason?: string,
    @Query('role') role?: string,
    @Headers('authorization') authorization?: string,
  ): Promise<RecordReadResult> {
    // On a reader this is forwarded to a writer under the caller's own token (RemoteRecordReads).
    return this.records.read(access, { tenant, eventId, purpose, ...(breakGlassReason ? { breakGlassReason } : {}), ...(role !== undefined ? { role } : {}) }, authorization);
  }
}
