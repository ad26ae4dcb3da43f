export * from './config';
export * from './tokens';
export * from './logger';
export * from './metrics';
export * from './health';
export * from './platform.module';
export * from './bootstrap';
export * from './auth';
