export * from './nats.service';
export * from './provision';
export * from './messaging.module';
export * from './jetstream';
export * from './publish';
export * from './rpc-filter';
export * from './request';
export * from './transports';
