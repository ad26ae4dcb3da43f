import type { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';

/**
 * Paths never written to a log: secrets, tokens and anything that could identify a patient.
 * Pseudonyms are fine; names, birth dates and payloads are not.
 */
export const REDACT_PATHS = [
  'password',
  'token',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'secret',
  '*.secret',
  'key',
  '*.privateKey',
  'data',
  '*.data',
  'payload.plaintext',
];

export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/** Lets Nest's own messages go through the same structured JSON logger. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string) {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
}
