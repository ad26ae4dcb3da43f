export * from './subjects';
export * from './envelope';
export * from './receipts';
export * from './validation';
export * from './consent';
export * from './audit';
export * from './pseudonyms';
