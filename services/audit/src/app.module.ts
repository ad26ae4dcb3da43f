import { DynamicModule, Module } from '@nestjs/common';
import type { Keyring } from '@clinical-ledger/chain';
import { MessagingModule } from '@clinical-ledger/messaging';
import { PlatformModule } from '@clinical-ledger/platform';
import { StorageModule } from '@clinical-ledger/storage';
import { AccessProjector } from './access/access.projector';
import { AlertService } from './alerts/alert.service';
import { AuditConfig } from './config';
import { ConsoleModule } from './console/console.module';
import { AuditConsumers } from './consumers/audit.consumers';
import { AuditController } from './http/audit.controller';
import { DashboardController } from './http/dashboard.controller';
import { LedgerClient } from './ledger/ledger.client';
import { LiveHub } from './live/live.hub';
import { LiveSessions } from './live/live-sessions';
import { LiveGateway } from './live/live.gateway';
import { SseController } from './live/sse.controller';
import { CheckpointMonitor, VERIFIER_KEYRING } from './monitor/checkpoint.monitor';
import { loadWitnessPolicy, WITNESS_POLICY } from './monitor/witness-keys';
import { loadVerifierKeyring } from './monitor/verifier-keys';
import { AuditStore } from './store/audit.store';
import { AuditStream } from './announce/audit-stream';
import { AckService } from './alerts/ack.service';
import { ChainFollower } from './ops/chain-follower';
import { EntryChecks } from './monitor/entry-checks';
import { LedgerHttp } from './ops/ledger-http';
import { ProjectionRebuild } from './ops/rebuild';
import { OpsController } from './ops/ops.controller';
import { OverviewService } from './ops/overview.service';
import { VerifyJobs } from './ops/verify-jobs';

export interface AuditModuleOptions {
  /** The trusted keys, instead of AUDIT_VERIFIER_KEYS / AUDIT_VERIFIER_KEYS_FILE. */
  keyring?: Keyring;
}

@Module({})
export class AuditAppModule {
  static forRoot(config: AuditConfig, opts: AuditModuleOptions = {}): DynamicModule {
    return {
      module: AuditAppModule,
      imports: [PlatformModule.forRoot(config), MessagingModule, StorageModule, ConsoleModule],
      controllers: [AuditController, OpsController, SseController, DashboardController, AuditConsumers],
      providers: [
        // Loaded here, at start: no usable key stops the service with the variable named.
        { provide: VERIFIER_KEYRING, useValue: opts.keyring ?? loadVerifierKeyring(config) },
        { provide: WITNESS_POLICY, useValue: loadWitnessPolicy(config) },
        AuditStore,
        AuditStream,
        LedgerClient,
        AlertService,
        EntryChecks,
        LiveHub,
        LiveSessions,
        LiveGateway,
        AckService,
        LedgerHttp,
        VerifyJobs,
        OverviewService,
        ChainFollower,
        ProjectionRebuild,
        CheckpointMonitor,
        AccessProjector,
      ],
    };
  }
}
