/**
 * HL7 table 0357 (message error condition codes) and the typed error every HL7 check throws.
 * The acknowledgment code follows HL7 v2 original-mode rules (chapter 2):
 * - AR: the message was rejected for its header (unsupported type, event, version, processing id)
 *   or for a reason unrelated to its content (JetStream unavailable): the sender may try again later;
 * - AE: the message itself is in error (unparseable, required field missing, too large): resending
 *   the same bytes will fail the same way.
 */
export const HL7_ERROR = {
  segmentSequence: { code: '100', text: 'Segment sequence error' },
  requiredFieldMissing: { code: '101', text: 'Required field missing' },
  dataType: { code: '102', text: 'Data type error' },
  tableValue: { code: '103', text: 'Table value not found' },
  unsupportedMessageType: { code: '200', text: 'Unsupported message type' },
  unsupportedEvent: { code: '201', text: 'Unsupported event code' },
  unsupportedProcessingId: { code: '202', text: 'Unsupported processing id' },
  unsupportedVersion: { code: '203', text: 'Unsupported version id' },
  unknownKey: { code: '204', text: 'Unknown key identifier' },
  duplicateKey: { code: '205', text: 'Duplicate key identifier' },
  internal: { code: '207', text: 'Application internal error' },
} as const;

export type Hl7ErrorKind = keyof typeof HL7_ERROR;

/** Where the error is: segment id, its 1-based sequence among segments of that id, field number. */
export interface Hl7ErrorLocation {
  segment: string;
  sequence?: number;
  field?: number;
  component?: number;
}

export class Hl7Error extends Error {
  constructor(
    readonly kind: Hl7ErrorKind,
    readonly ackCode: 'AE' | 'AR',
    message: string,
    readonly location?: Hl7ErrorLocation,
    /** Temporary (the sender should retry later), as opposed to a property of the message. */
    readonly temporary = false,
  ) {
    super(message);
    this.name = 'Hl7Error';
  }

  get code(): string {
    return HL7_ERROR[this.kind].code;
  }
}
