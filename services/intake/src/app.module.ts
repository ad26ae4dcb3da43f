import { DynamicModule, Module } from '@nestjs/common';
import { PseudonymSecretsError, Pseudonymizer } from '@clinical-ledger/contracts';
import { MessagingModule, ReceiptAwaiter } from '@clinical-ledger/messaging';
import { ConfigError, PlatformModule } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { parsePairs, IntakeConfig } from './config';
import { CloudEventsController } from './cloudevents/cloudevents.controller';
import { FhirController } from './fhir/fhir.controller';
import { FhirIntakeService } from './fhir/fhir-intake.service';
import { Hl7IntakeService } from './hl7/hl7-intake.service';
import { isTimeZone } from './hl7/hl7-time';
import { MllpServer } from './mllp/mllp.server';
import { ControlIdRegistry } from './pipeline/control-ids';
import { LedgerPublisher } from './pipeline/ledger-publisher';
import { FacilityTenants } from './pipeline/tenants';

const SECRETS_VARIABLE = 'INTAKE_PSEUDONYM_SECRETS_FILE';

/** Checks what class-validator cannot: files, cross-variable consistency. Throws ConfigError. */
export function checkIntakeConfig(config: IntakeConfig): { pseudonyms: Pseudonymizer; tenants: FacilityTenants } {
  const problems: { variable: string; message: string }[] = [];
  let pseudonyms = new Pseudonymizer({}, SECRETS_VARIABLE);
  try {
    pseudonyms = Pseudonymizer.fromFile(config.INTAKE_PSEUDONYM_SECRETS_FILE, SECRETS_VARIABLE);
  } catch (err) {
    if (!(err instanceof PseudonymSecretsError)) throw err;
    problems.push({ variable: 'INTAKE_PSEUDONYM_SECRETS_FILE', message: err.message.replace(/^INTAKE_PSEUDONYM_SECRETS_FILE: /, '') });
  }
  const tenants = FacilityTenants.fromConfig(config.INTAKE_FACILITY_TENANTS, config.INTAKE_DEFAULT_TENANT);
  if (config.INTAKE_PSEUDONYM_SECRETS_FILE && !problems.length) {
    const routed = [...tenants.tenants(), ...Object.values(parsePairs(config.INTAKE_MLLP_PORT_TENANTS))];
    const missing = [...new Set(routed)].filter((t) => !pseudonyms.has(t));
    if (missing.length) {
      problems.push({ variable: 'INTAKE_PSEUDONYM_SECRETS_FILE', message: `has no secret for tenant(s) ${missing.join(', ')} routed to by the HL7 configuration` });
    }
  }
  if (!isTimeZone(config.INTAKE_HL7_TIMEZONE)) problems.push({ variable: 'INTAKE_HL7_TIMEZONE', message: 'must be an IANA time zone, e.g. Europe/Berlin' });
  if (config.INTAKE_MAX_MESSAGE_BYTES > config.INTAKE_MLLP_MAX_BUFFERED_BYTES) {
    problems.push({ variable: 'INTAKE_MLLP_MAX_BUFFERED_BYTES', message: `must be at least INTAKE_MAX_MESSAGE_BYTES (${config.INTAKE_MAX_MESSAGE_BYTES}), or no message of the largest size could ever be taken` });
  }
  if (!!config.INTAKE_MLLP_TLS_CERT_FILE !== !!config.INTAKE_MLLP_TLS_KEY_FILE) {
    problems.push({ variable: 'INTAKE_MLLP_TLS_KEY_FILE', message: 'TLS needs both INTAKE_MLLP_TLS_CERT_FILE and INTAKE_MLLP_TLS_KEY_FILE' });
  }
  if (problems.length) throw new ConfigError(problems);
  return { pseudonyms, tenants };
}

@Module({})
export class IntakeAppModule {
  static forRoot(config: IntakeConfig, logger?: Logger): DynamicModule {
    const { pseudonyms, tenants } = checkIntakeConfig(config);
    return {
      module: IntakeAppModule,
      // No Mongo: intake keeps nothing itself, and a database outage must not stop hospitals'
      // messages reaching JetStream, which buffers them for the ledger.
      imports: [PlatformModule.forRoot(config, ...(logger ? [logger] : [])), MessagingModule],
      controllers: [FhirController, CloudEventsController],
      providers: [
        { provide: Pseudonymizer, useValue: pseudonyms },
        { provide: FacilityTenants, useValue: tenants },
        LedgerPublisher,
        ReceiptAwaiter,
        ControlIdRegistry,
        Hl7IntakeService,
        FhirIntakeService,
        MllpServer,
      ],
    };
  }
}
