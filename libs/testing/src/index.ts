export * from './workspace';
export * from './binaries';
export * from './servers';
export * from './infra';
