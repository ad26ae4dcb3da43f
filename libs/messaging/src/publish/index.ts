export * from './errors';
export * from './publisher';
export * from './receipts';
export * from './pub-acks';
