// The live stream's reader is shared with the patient app (libs/browser).
export { follow, SseParser, type LiveMessage, type LiveState } from '@clinical-ledger/browser';
