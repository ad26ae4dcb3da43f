export * from './nats.service';
export * from './messaging.module';
export * from './jetstream';
