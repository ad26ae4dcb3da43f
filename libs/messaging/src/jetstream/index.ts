export * from './errors';
export * from './consumer';
export * from './transport';
