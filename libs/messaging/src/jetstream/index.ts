export * from './errors';
export * from './consumer';
export * from './transport';
export * from './dead-letter';
