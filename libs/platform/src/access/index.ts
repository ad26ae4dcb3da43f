export * from './table';
export * from './policy';
export * from './http';
export * from './requests';
export * from './markdown';
export * from './consent-change';
