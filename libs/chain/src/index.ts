// Public API of the verifiable-log core: pure functions and types, no I/O, nothing of ours.
export * from './errors';
export * from './bytes';
export * from './jcs';
export * from './hash';
export * from './tree-math';
export * from './tree-store';
export * from './frontier';
export * from './proofs';
export * from './verify-proofs';
export * from './keys';
export * from './note';
export * from './cosignature';
export * from './checkpoint';
export * from './entry';
export * from './verify-chain';
