import { Module } from '@nestjs/common';
import { ConsoleController } from './console.controller';

/** Serves the staff console (its variables are part of AuditConfig, checked at start). */
@Module({ controllers: [ConsoleController] })
export class ConsoleModule {}
