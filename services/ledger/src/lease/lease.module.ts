import { Global, Module } from '@nestjs/common';
import { ChainLeases, ChainOwners } from './chain-leases';

/**
 * Chain leases (LEDGER_LEASES): `ChainLeases` (this replica's leases and the appender's fence, idle
 * on a reader) and `ChainOwners` (who writes a chain, for the read API), in every role.
 */
@Global()
@Module({ providers: [ChainLeases, ChainOwners], exports: [ChainLeases, ChainOwners] })
export class LedgerLeaseModule {}
