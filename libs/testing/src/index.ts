export * from './workspace';
export * from './binaries';
export * from './servers';
export * from './infra';
export * from './service-process';
export * from './auth';
export * from './go-verifier';
export * from './ledger-keys';
