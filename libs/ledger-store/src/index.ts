export * from './documents';
export * from './store';
export * from './verify';
export * from './generate';
export * from './tiles';
export * from './tile-writer';
