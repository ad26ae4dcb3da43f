export * from './errors';
export * from './transport';
export * from './client';
export * from './ledger-client';
